"""How long Snakemake takes to plan a paper-scale sweep: a dry run on a fresh directory and a no-op rerun
after a finished run.

The sweep is ``config/paper.yaml`` (CP2K labels, 10,000 pool frames and 100 test frames per system, the
upper-bound arm of 1024 frames) extended to 2 systems (NaCl, KCl) x every selection method of the registry
(11) x 6 training-set sizes (8 ... 256) x 5 seeds.

``dry_run_s``: wall time of ``snakemake -n`` in a fresh, empty working directory, from the start of the
process to its exit (parsing the Snakefile, validating the configuration, the labeller set-up check on this
host, building the DAG of the whole campaign and printing every planned job).  ``n_jobs`` is the
job count that dry run reports.

``noop_rerun_s``: wall time of the plain run command (``snakemake --cores N``, no ``-n``) in a working
directory where the whole campaign is finished, i.e. every job of the DAG has its output and its metadata, so the command finds nothing to do and exits.  A paper-scale campaign
cannot run here (each of ~17,000 CP2K labels at 1200 Ry takes tens of minutes), so the finished state is
fabricated:
  1. ``snakemake --summary`` lists every output of the DAG and whether it exists; each missing one is
     created as an empty file (the plan reads no output's content: the label batches a training set needs
     follow from the configuration).
  2. ``snakemake --touch --forceall`` runs through the DAG, which dates the outputs in dependency order and
     records each job's metadata as a finished job does (code, parameters, input set, software environment:
     what the rerun compares).
  3. ``snakemake -n`` must then plan nothing and report no job without metadata.
``n_label_files`` counts the label batches (``labelling.batch_size`` frames each, 8 in config/paper.yaml).
The touch run use the greedy scheduler, all ready jobs at once and no
pause between touched jobs (Snakemake's 0.1 s pause guards file systems with coarse time stamps; at
~20,000 jobs it would add half an hour and changes nothing on ext4 or tmpfs).  Its time is reported as
``fabricate_s``, not part of either figure.

``job_reparse_s``: the parse every cluster job makes before it runs its rule, ``python -m snakemake
--target-jobs ... --mode remote`` as Snakemake's executors write it (here as a dry run of one job in the
finished campaign), the median of three.

Every figure comes with the CPU time of the command (``*_cpu_s``: user + system time of the snakemake process
and of the processes it waited for, i.e. the labeller check's child) and the 1-minute load average before it
started: on a shared machine the wall time stretches with the load, the CPU time hardly does.

Run: ``.venv/bin/python benchmarks/bench_planning.py > benchmarks/results/planning.json`` (about 2 minutes on
2 cores), then ``.venv/bin/python benchmarks/tables.py --update README.md``.  ``--keep`` keeps the finished campaign and
``--finished DIR`` times it again without fabricating it anew (the dry run still starts from a fresh directory).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from confselect.selection import FULL_ARM, METHODS  # noqa: E402

PAPER = REPO / "config" / "paper.yaml"
SYSTEMS = ["NaCl", "KCl"]
SIZES = [8, 16, 32, 64, 128, 256]
SEEDS = [0, 1, 2, 3, 4]

# `snakemake --touch` in this process's child, without the pause between touched jobs (see the docstring).
TOUCH = """
import sys
from snakemake.executors import touch
from snakemake.cli import main
touch.Executor.SLEEPING_TIME = 0.0
main(sys.argv[1:])
"""


def sweep_overlay() -> dict:
    methods = [name for name in METHODS if name != FULL_ARM]
    return {"sweep": {"systems": SYSTEMS, "methods": methods, "n_train": SIZES, "seeds": SEEDS}}


def snakemake_cmd(workdir: Path, overlay_file: Path, cores: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores",
            str(cores), "--configfile", str(PAPER), str(overlay_file), *args]


def run(cmd: list[str], check: bool = True) -> tuple[float, str]:
    """Wall time of ``cmd`` and its merged output."""
    wall, _, output = timed(cmd, check)
    return wall, output


def timed(cmd: list[str], check: bool = True) -> tuple[float, float, str]:
    """Wall time, CPU time (user + system, the command and the processes it waited for) and merged output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu, proc.stdout


def job_total(output: str) -> int:
    """The ``total`` row of a dry run's job statistics (0 when there is nothing to do)."""
    match = re.search(r"^total\s+(\d+)\s*$", output, re.M)
    return int(match.group(1)) if match else 0


def summary(workdir: Path, overlay_file: Path, cores: int) -> list[tuple[str, str, str]]:
    """(output file, rule, status) of every job of the workflow's DAG (``snakemake --summary``)."""
    _, output = run(snakemake_cmd(workdir, overlay_file, cores, "--summary"))
    rows = [line.split("\t") for line in output.splitlines() if line.count("\t") == 5]
    return [(row[0], row[2], row[4]) for row in rows if row[0] != "output_file"]


def fabricate(workdir: Path, missing: list[str]) -> None:
    """Create the ``missing`` outputs, empty (their dates are set by :func:`touch`)."""
    for name in missing:
        path = workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


def touch(workdir: Path, overlay_file: Path, *args: str) -> None:
    """``snakemake --touch``: dates the outputs of the jobs it runs in dependency order and records their
    metadata.  All jobs of a scheduling round at once (``--cores``: no process is started)."""
    cmd = snakemake_cmd(workdir, overlay_file, 100000, "--touch", "--quiet", "--scheduler", "greedy", *args)
    run([sys.executable, "-c", TOUCH, *cmd[3:]])


def finish(workdir: Path, overlay_file: Path, cores: int) -> dict:
    """Bring ``workdir`` to the state of a finished campaign (module docstring); returns what it took."""
    start = time.perf_counter()
    fabricate(workdir, [name for name, _, status in summary(workdir, overlay_file, cores) if status == "missing"])
    touch(workdir, overlay_file, "--forceall")
    return {"fabricate_s": round(time.perf_counter() - start, 1), **check_finished(workdir, overlay_file, cores)}


def check_finished(workdir: Path, overlay_file: Path, cores: int) -> dict:
    """Nothing to run and no job without metadata in ``workdir``; how many outputs and labels it holds."""
    _, plan = run(snakemake_cmd(workdir, overlay_file, cores, "-n"))
    if job_total(plan) or "missing provenance" in plan:
        raise RuntimeError(f"the campaign in {workdir} is not finished:\n{plan[-3000:]}")
    results = workdir / "results"
    return {"n_output_files": sum(1 for p in results.rglob("*") if p.is_file()),
            "n_label_files": sum(1 for p in results.glob("*/labels/*/**/batch*.extxyz"))}


def job_reparse(workdir: Path, overlay_file: Path, repeats: int = 3) -> tuple[float, float]:
    """Median wall and CPU time of the parse every cluster job makes before its rule runs: the job's own
    ``python -m snakemake --target-jobs ... --mode remote`` (as Snakemake's executors write it), as a dry run
    of the teacher's NPT job of NaCl in the finished campaign."""
    args = ["--target-jobs", "reference_npt:system=NaCl", "--allowed-rules", "reference_npt", "--attempt", "1",
            "--force-use-threads", "--mode", "remote", "-n"]
    times = [timed(snakemake_cmd(workdir, overlay_file, 1, *args))[:2] for _ in range(repeats)]
    walls, cpus = sorted(t[0] for t in times), sorted(t[1] for t in times)
    return walls[repeats // 2], cpus[repeats // 2]


def machine(cores: int) -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    from importlib.metadata import version

    return {"cpu": model, "cpu_count": os.cpu_count(), "cores": cores, "python": platform.python_version(),
            "snakemake": version("snakemake")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cores", type=int, default=2, help="--cores of every snakemake call")
    parser.add_argument("--keep", action="store_true", help="keep the working directory (path on stderr)")
    parser.add_argument("--finished", type=Path,
                        help="a directory kept by an earlier --keep run: time the no-op rerun there, without "
                        "fabricating the campaign again")
    args = parser.parse_args()

    overlay = sweep_overlay()
    fresh = Path(tempfile.mkdtemp(prefix="confselect-planning-"))
    workdir = args.finished or fresh
    overlay_file = workdir / "sweep.yaml"
    try:
        if args.finished is None:
            overlay_file.write_text(yaml.safe_dump(overlay))
        elif yaml.safe_load(overlay_file.read_text()) != overlay:
            raise SystemExit(f"{overlay_file} is not this benchmark's sweep")
        load_before = os.getloadavg()[0]
        dry_run_s, dry_run_cpu_s, plan = timed(snakemake_cmd(fresh, overlay_file, args.cores, "-n"))
        n_jobs = job_total(plan)
        if args.finished is None:
            finished = finish(workdir, overlay_file, args.cores)
        else:
            finished = check_finished(workdir, overlay_file, args.cores)
        load_before_noop = os.getloadavg()[0]
        noop_rerun_s, noop_rerun_cpu_s, output = timed(snakemake_cmd(workdir, overlay_file, args.cores))
        if "Nothing to be done" not in output:
            raise RuntimeError(f"the rerun of the finished campaign did something:\n{output[-3000:]}")
        job_reparse_s, job_reparse_cpu_s = job_reparse(workdir, overlay_file)
    finally:
        if args.keep and args.finished is None:
            print(f"working directory kept: {workdir}", file=sys.stderr)
        elif args.finished is None:
            shutil.rmtree(workdir, ignore_errors=True)
        if fresh != workdir:
            shutil.rmtree(fresh, ignore_errors=True)
    sweep = overlay["sweep"]
    print(json.dumps({
        "config": "config/paper.yaml + sweep " + " x ".join(
            f"{len(sweep[k])} {k}" for k in ("systems", "methods", "n_train", "seeds")),
        "methods": sweep["methods"],
        "dry_run_s": round(dry_run_s, 2),
        "dry_run_cpu_s": round(dry_run_cpu_s, 2),
        "n_jobs": n_jobs,
        "noop_rerun_s": round(noop_rerun_s, 2),
        "noop_rerun_cpu_s": round(noop_rerun_cpu_s, 2),
        "job_reparse_s": round(job_reparse_s, 2),
        "job_reparse_cpu_s": round(job_reparse_cpu_s, 2),
        "load_average_1min": {"dry_run": round(load_before, 2), "noop_rerun": round(load_before_noop, 2)},
        **finished,
        "machine": machine(args.cores),
    }, indent=2))


if __name__ == "__main__":
    main()
