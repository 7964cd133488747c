"""One CP2K single point of 64 molten NaCl ions at the paper's settings, as MPI ranks x OpenMP threads.

Prints one JSON object. The frame: 32 ion pairs from the project's classical pool protocol (LAMMPS, premelt
at 2000 K, then a short NPT ramp from 1300 K; the last frame). The settings: ``labelling.cp2k`` of
``config/paper.yaml`` over the schema's defaults (PBE + rVV10 on the density grid, XC smoothing, MOLOPT-SR
DZVP, GTH-PBE q9/q7, 1200 Ry, REL_CUTOFF 60 Ry, EPS_SCF 1e-6). Each case runs through the labeller itself,
with its launcher setting:

* ``1x2``: one process, 2 OpenMP threads (no MPI launcher);
* ``2x1``: ``mpirun -np 2`` (Debian's OpenMPI; ``--allow-run-as-root`` when run as root), 1 thread each.

Per case: wall time of the single point (``label_wall_time_s``), CPU time (user + system of the launcher and
every rank, from ``/usr/bin/time -v``, which is put in front of the launcher), SCF steps, the largest resident
set of any one process (``time -v``) and the peak of the summed resident sets of all CP2K processes (sampled
every 0.5 s with psutil: with 2 ranks this is what a node must hold), energy and largest force. A case that
fails (e.g. killed by the out-of-memory killer) is recorded with its failure. The load average before and
after each case is recorded: the machine is shared. ``--cutoffs-Ry`` runs a cutoff series instead of the
paper's 1200 Ry (memory and time grow with the number of grid points, i.e. with cutoff^1.5).

    nice python benchmarks/bench_cp2k_ranks.py > benchmarks/results/cp2k_ranks.json
    nice python benchmarks/bench_cp2k_ranks.py --cutoffs-Ry 400,600,800 > benchmarks/results/cp2k_ranks_series.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]


def melt_64(seed: int = 3):
    """The last frame of a short classical NPT run of 32 NaCl ion pairs (the pool protocol, shortened)."""
    from confselect.classical import run_classical_md

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    protocol = dict(config["pool"]["md"], premelt_fs=2000.0, T_start_K=1300.0, T_end_K=1300.0,
                    ramp_fs=2000.0, frame_interval_fs=1000.0)
    system = dict(config["systems"]["NaCl"], structure=dict(config["systems"]["NaCl"]["structure"],
                                                             composition={"Na": 32, "Cl": 32}))
    frames = []
    run_classical_md(system, protocol, seed=seed, on_frame=frames.append)
    atoms = frames[-1].copy()
    atoms.calc = None
    return atoms


def paper_settings() -> dict:
    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    return dict(paper["labelling"]["cp2k"])


class TreeMemory:
    """Peak of the summed RSS of this process's descendants (launcher, ranks), sampled every 0.5 s."""

    def __init__(self):
        import psutil

        self.me, self.peak_bytes, self.stop = psutil.Process(), 0, threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        import psutil

        while not self.stop.wait(0.5):
            total = 0
            for child in self.me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    pass
            self.peak_bytes = max(self.peak_bytes, total)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def time_v(time_file: Path) -> dict:
    """Largest resident set (MB) and CPU time (s, user + system, the ranks included) from /usr/bin/time -v."""
    text = time_file.read_text() if time_file.exists() else ""
    found = {key: re.search(pattern + r":\s*([\d.]+)", text) for key, pattern in (
        ("rss_kb", r"Maximum resident set size \(kbytes\)"), ("user_s", r"User time \(seconds\)"),
        ("system_s", r"System time \(seconds\)"))}
    values = {key: float(m.group(1)) if m else None for key, m in found.items()}
    return {"max_rss_one_process_MB": values["rss_kb"] / 1024.0 if values["rss_kb"] else None,
            "cpu_s": values["user_s"] + values["system_s"] if values["user_s"] is not None else None,
            "killed_by_signal": "terminated by signal" in text}


def run_case(atoms, settings: dict, ranks: int, threads: int, workdir: Path) -> dict:
    from confselect.labelling import LabelFailure
    from confselect.labelling.cp2k_settings import labeller_from_config

    time_file = workdir / f"time_{ranks}x{threads}_{settings['cutoff_Ry']:g}Ry.txt"
    launcher = f"/usr/bin/time -v -o {time_file}"
    if ranks > 1:
        root = " --allow-run-as-root" if os.geteuid() == 0 else ""
        launcher += f" mpirun{root} --bind-to none -np {{ranks}}"
    labeller = labeller_from_config({**settings, "launcher": launcher, "ranks": ranks, "threads": threads})
    load_before = os.getloadavg()
    result = {"ranks": ranks, "threads_per_rank": threads, "cutoff_Ry": settings["cutoff_Ry"], "launcher": launcher}
    with TreeMemory() as memory:
        try:
            frame = labeller.label(atoms, workdir / f"{ranks}x{threads}_{settings['cutoff_Ry']:g}Ry")
        except LabelFailure as err:  # e.g. killed by the kernel's out-of-memory killer
            frame = None
            result.update(failed=err.details["kind"], reason=str(err), wall_s=err.details["wall_time_s"])
    result.update(time_v(time_file), peak_rss_all_processes_MB=memory.peak_bytes / 2**20,
                  load_average_before=load_before, load_average_after=os.getloadavg())
    if frame is not None:
        result.update(wall_s=frame.info["label_wall_time_s"], scf_steps=frame.info["scf_iterations"],
                      scf_retry=frame.info["scf_retry"], energy_eV=frame.get_potential_energy(),
                      max_force_eV_A=float(np.abs(frame.get_forces()).max()), cp2k_version=frame.info["cp2k_version"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="1x2,2x1", help="ranks x threads, comma-separated")
    parser.add_argument("--cutoffs-Ry", default=None,
                        help="density cutoffs to run instead of the paper's (comma-separated), for a scaling series")
    parser.add_argument("--workdir", default=None, help="keep CP2K's files here (default: a temporary directory)")
    args = parser.parse_args()
    atoms = melt_64()
    settings = paper_settings()
    with tempfile.TemporaryDirectory(prefix="bench-cp2k-") as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        cases = []
        cutoffs = [float(c) for c in args.cutoffs_Ry.split(",")] if args.cutoffs_Ry else [settings["cutoff_Ry"]]
        for cutoff in cutoffs:
            for case in args.cases.split(","):
                ranks, threads = (int(x) for x in case.split("x"))
                cases.append(run_case(atoms, {**settings, "cutoff_Ry": cutoff}, ranks, threads, workdir))
                print(json.dumps(cases[-1]), file=sys.stderr, flush=True)
    print(json.dumps({
        "benchmark": "bench_cp2k_ranks",
        "frame": {"n_atoms": len(atoms), "formula": atoms.get_chemical_formula(),
                  "volume_A3": float(atoms.get_volume()), "temperature_K": atoms.info.get("temperature_K")},
        "settings": {"labelling.cp2k (paper.yaml)": settings},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "memory_GB": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9},
        "cases": cases,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    }, indent=1))


if __name__ == "__main__":
    main()
