"""The Slurm profile (profiles/slurm) against a real single-node Slurm started on this machine.

The tiny workflow (tests/configs/tiny.yaml, one model: method random, n_train [4], seed 0) runs through
``snakemake --workflow-profile profiles/slurm``.  The cluster (tests/slurm_cluster.py) has the profile's
three partitions, a fake GPU, no accounting database and no munge; job status goes through squeue, as on
a cluster without accounting.  Its one node is declared with more CPUs and memory than this machine has
(``SlurmdParameters=config_overrides``): Slurm books what the profile asks for, nothing enforces it.

By default (``make test``) the run stops after the model's training and its test-set errors, which keeps
the test to a few minutes on two cores: classical MD, pool features, descriptors, the selection, the
label batches of the training and the held-out frames (one Slurm job per batch), training and test errors,
in one invocation; the test counts every label batch's Slurm jobs.
With ``CONFSELECT_SLURM_TEST_FULL=1`` it runs the whole workflow, also in one command, and compares
summary.csv.

Asserted from Slurm's own records (``scontrol show job``, each job's batch script, and the
job-completion file read through ``sacct -c``):

* train ran in the GPU partition with ``gres:gpu:1`` (the only rule whose device config/paper.yaml sets
  to cuda); the label jobs in the CPU partition; every other rule in the default partition,
  without a GPU;
* each job's CPUs (= the job's threads as Snakemake logged them), memory and time limit are the
  profile's values for its attempt;
* the train job, cancelled with ``scancel`` while its script runs, was resubmitted by Snakemake as
  attempt 2 with the profile's attempt-2 memory and time limit, and the run completed;
* the retried model is bit-for-bit the model an undisturbed training on the same labels gives (trained
  here in-process with the same code, settings and seed).  Every summary.csv column of a model (test
  errors, seeded ML-MD) is a deterministic function of the model and the labels, so equal models give
  equal rows; the full run checks the error columns directly.

Skipped (with the reason) only when not root, when Slurm is missing and apt-get cannot install it, or
when slurmctld/slurmd already run on the machine (a real cluster's daemons are left alone).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from ase.io import read

from slurm_cluster import SlurmCluster, mem_mb, minutes, why_no_live_cluster

REPO = Path(__file__).resolve().parents[1]
PROFILE_DIR = REPO / "profiles" / "slurm"
PROFILE = PROFILE_DIR / "config.yaml"
TINY = REPO / "tests" / "configs" / "tiny.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]

GPU_RULES = {"train"}  # the rules whose device config/paper.yaml sets to cuda (docs/cluster.md, "Routing")
CPU_RULES = {"label"}
ALL_RULES = {
    "generate_frames", "pool_features", "reference_md", "descriptors", "select", "label", "train",
    "coverage", "test_errors", "ml_md", "reference_npt", "summary", "learning_curve", "observables_report",
    "density_report",
}
FULL = os.environ.get("CONFSELECT_SLURM_TEST_FULL") == "1"
# Rules the run submits: everything up to training, or the whole workflow.
RUN_RULES = ALL_RULES if FULL else {"generate_frames", "pool_features", "descriptors", "select", "label", "train", "test_errors"}
# One model: the smallest sweep; two held-out frames are enough for the test errors of the full run.
SWEEP = {
    "sweep": {"systems": ["NaCl"], "methods": ["random"], "n_train": [4], "seeds": [0], "full": {"enabled": False}},
    "test": {"generators": {"md": {"frame_interval_fs": 1000.0}}},
}
MODEL = {"system": "NaCl", "method": "random", "n": 4, "seed": 0}
LABEL_BATCH = yaml.safe_load(TINY.read_text())["labelling"]["batch_size"]
# the label batches of the training frames and of the two held-out frames
N_LABEL_JOBS = math.ceil(MODEL["n"] / LABEL_BATCH) + math.ceil(2 / LABEL_BATCH)
MODEL_DIR = f"results/{MODEL['system']}/models/md/{MODEL['method']}/n{MODEL['n']}/seed{MODEL['seed']}"
RUN_TIMEOUT_S = 1200


# ---------------------------------------------------------------------------------------------- profile
def load_profile() -> dict:
    return yaml.safe_load(PROFILE.read_text())


def resource(profile: dict, rule: str, name: str, attempt: int = 1):
    """The profile's value of a resource for a rule (set-resources, else default-resources) at an attempt."""
    value = profile.get("set-resources", {}).get(rule, {}).get(name)
    if value is None:
        value = profile.get("default-resources", {}).get(name)
    if isinstance(value, str):
        try:
            return eval(value, {"__builtins__": {}}, {"attempt": attempt})  # noqa: S307 - our own profile
        except NameError:
            return value
    return value


def threads(profile: dict, rule: str, workflow_threads: int = 1) -> int:
    return int(profile.get("set-threads", {}).get(rule, workflow_threads))


def partitions(profile: dict) -> dict[str, str | None]:
    """The profile's partitions; "default" is None when the profile leaves it to the cluster's default."""
    return {
        "default": resource(profile, "generate_frames", "slurm_partition"),
        "gpu": resource(profile, "train", "slurm_partition"),
        "cpu": resource(profile, "label", "slurm_partition"),
    }


CLUSTER_DEFAULT = "main"  # the test cluster's default partition when the profile names none


def test_profile_routes_and_grows_with_attempt():
    """The profile itself (no Slurm needed): routing, GPUs, retries, growth with attempt, grouping."""
    p = load_profile()
    assert p["executor"] == "slurm"
    assert p["slurm-status-command"] in ("squeue", "sacct")
    assert int(p["retries"]) >= 1
    parts = partitions(p)
    assert parts["gpu"] and parts["cpu"], parts
    assert len({parts["default"] or CLUSTER_DEFAULT, parts["gpu"], parts["cpu"]}) == 3, f"partitions should differ: {parts}"
    for rule in GPU_RULES:
        assert resource(p, rule, "slurm_partition") == parts["gpu"], rule
        assert resource(p, rule, "gpu") == 1 or resource(p, rule, "gres") == "gpu:1", rule
    for rule in ALL_RULES - GPU_RULES - CPU_RULES:
        assert resource(p, rule, "slurm_partition") == parts["default"], rule
        assert not resource(p, rule, "gpu") and not resource(p, rule, "gres"), rule
    for rule in ("label", "train"):
        for name in ("mem_mb", "runtime"):
            values = [resource(p, rule, name, a) for a in (1, 2, 3)]
            assert all(isinstance(v, (int, float)) for v in values), (rule, name, values)
            assert values[0] < values[1] < values[2], f"{rule} {name} does not grow with attempt: {values}"
    assert "groups" not in p, "labels are batched by the workflow (labelling.batch_size), not by Snakemake groups"


# ---------------------------------------------------------------------------------------------- the run
def _snakemake(workdir: Path, configs, *extra) -> list[str]:
    return [
        *SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir),
        "--workflow-profile", str(PROFILE_DIR),
        "--configfile", *map(str, configs),
        # faster status polling than the plugin's 40 s default; logs of successful jobs kept for debugging
        "--slurm-init-seconds-before-status-checks", "2",
        "--slurm-keep-successful-logs",
        *extra,
    ]


def _run(cmd, log: Path, timeout: float) -> None:
    with open(log, "w") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, cwd=REPO)
    if proc.returncode != 0:
        raise AssertionError(f"{shlex.join(cmd)} failed ({proc.returncode}):\n{log.read_text()[-6000:]}")


def logged_threads(*logs: Path) -> dict[str, int]:
    """Threads per rule as Snakemake printed them for the jobs it submitted (no line means 1)."""
    found: dict[str, int] = {}
    rule = None
    for log in logs:
        for line in log.read_text().splitlines():
            m = re.match(r"^\s*(?:local)?(?:rule|checkpoint) (\w+):$", line)
            if m:
                rule = m.group(1)
                found.setdefault(rule, 1)
            m = re.match(r"^\s*threads: (\d+)$", line)
            if m and rule:
                found[rule] = int(m.group(1))
    return found


def _squeue() -> list[tuple[str, str, str]]:
    out = subprocess.run(["squeue", "-h", "-o", "%i|%T|%k"], capture_output=True, text=True, timeout=30).stdout
    return [tuple(line.split("|", 2)) for line in out.splitlines() if line.count("|") == 2]


def _script_running(workdir: Path, script: str) -> bool:
    """Is a process running the workflow script ``script`` (Snakemake runs it as .snakemake/scripts/tmp*.<script>)?"""
    scripts = str(workdir / ".snakemake" / "scripts")
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.decode(errors="replace").startswith(scripts) and a.endswith(b"." + script.encode()) for a in args):
            return True
    return False


def _run_and_kill_train(cmd, log: Path, workdir: Path, timeout: float, on_train_submitted) -> dict:
    """Run snakemake; cancel the first train job once its training script runs; return what was cancelled.

    ``on_train_submitted()`` is called once, when a train job is first in the queue (its labels exist).
    """
    killed, seen = {}, False
    deadline = time.time() + timeout
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        try:
            while proc.poll() is None:
                if time.time() > deadline:
                    raise TimeoutError(f"snakemake did not finish within {timeout} s")
                queue = _squeue()
                if not killed:
                    for job_id, state, comment in queue:
                        if not comment.startswith("rule_train_"):
                            continue
                        if not seen:
                            seen = True
                            on_train_submitted()
                        if state == "RUNNING" and _script_running(workdir, "train.py"):
                            subprocess.run(["scancel", job_id], check=True, timeout=30)
                            killed = {"job_id": job_id, "at": time.time()}
                time.sleep(0.5)
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=60)
    if proc.returncode != 0:
        raise AssertionError(f"{shlex.join(cmd)} failed ({proc.returncode}):\n{log.read_text()[-6000:]}")
    return killed


def _reference_worker() -> None:
    """Subprocess: train undisturbed on the given labels, then compare with the model read from stdin.

    argv[1]: JSON {"labels": [...], "training": {...}, "seed": int, "out": dir}.  After training it prints
    "trained"; then it reads one JSON line {"model": path, "test_labels": [...]} and prints one JSON
    line: the weights' comparison and, for test labels, the reference model's test-set errors.
    """
    import torch

    from confselect.calculator import spk_calculator
    from confselect.metrics import test_set_errors
    from confselect.training import SchNetTrainer, labelled_frames

    args = json.loads(sys.argv[1])
    frames, failed = labelled_frames(args["labels"], first=args["n"])
    SchNetTrainer(seed=args["seed"], **args["training"]).fit(frames, args["out"])
    print("trained", flush=True)
    request = json.loads(sys.stdin.readline())
    reference_path = Path(args["out"]) / "model.pt"
    ours = torch.load(reference_path, weights_only=False).state_dict()
    theirs = torch.load(request["model"], weights_only=False).state_dict()
    result = {
        "n_frames": len(frames), "failed": failed,
        "keys_equal": list(ours) == list(theirs),
        "different": [k for k in ours if k not in theirs or not torch.equal(ours[k], theirs[k])],
        "n_tensors": len(ours),
    }
    if request.get("test_labels"):
        calc = spk_calculator(reference_path, args["training"]["cutoff_A"])

        def predict(atoms):
            atoms = atoms.copy()
            atoms.calc = calc
            return atoms.get_potential_energy(), atoms.get_forces()

        result["errors"] = test_set_errors(predict, labelled_frames(request["test_labels"])[0])
    print("result " + json.dumps(result), flush=True)


class ReferenceTraining:
    """The undisturbed training, in a separate process, started while the cluster trains."""

    def __init__(self, run: Path, configs, out: Path, threads: int):
        self.run, self.configs, self.out, self.threads = run, configs, out, threads
        self.proc = None

    def start(self) -> None:
        m = MODEL
        config = {}
        for path in [REPO / "config" / "config.yaml", *self.configs]:
            _merge(config, yaml.safe_load(open(path)))
        self.training = {**config["training"], "threads": self.threads}
        selection = json.loads(
            (self.run / "results" / m["system"] / "selection" / "md" / m["method"] / f"seed{m['seed']}.json").read_text()
        )
        labels = [str(path) for path in _label_batches(self.run, m["system"], f"selection/md/{m['method']}/seed{m['seed']}")]
        assert labels and len(selection["indices"]) >= m["n"]
        self.out.mkdir(parents=True, exist_ok=True)
        args = json.dumps({"labels": labels, "n": m["n"], "training": self.training, "seed": m["seed"],
                           "out": str(self.out)})
        code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_slurm; test_slurm._reference_worker()"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=self.out
        )

    def compare(self, model: Path, test_labels=()) -> dict:
        assert self.proc is not None, "the reference training was never started"
        try:
            lines = []
            for line in self.proc.stdout:
                lines.append(line)
                if line.strip() == "trained":
                    break
            else:
                raise AssertionError(f"reference training failed: {''.join(lines)[-3000:]}")
            self.proc.stdin.write(json.dumps({"model": str(model), "test_labels": [str(p) for p in test_labels]}) + "\n")
            self.proc.stdin.flush()
            for line in self.proc.stdout:
                if line.startswith("result "):
                    self.proc.wait(timeout=300)
                    return json.loads(line[len("result "):])
            raise AssertionError("the reference comparison printed no result")
        finally:
            self.close()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _job_info(cluster: SlurmCluster, job_id: str, rec: dict) -> dict:
    script = cluster.batch_script(job_id)
    targets = re.search(r"--target-jobs ((?:'[^']*'\s*)+)", script)
    target_jobs = shlex.split(targets.group(1)) if targets else []
    attempt = re.search(r"--attempt (\d+)", script)
    tres = dict(kv.split("=", 1) for kv in rec.get("TRES", "").split(",") if "=" in kv)
    return {
        "job_id": job_id,
        "rules": sorted({t.split(":", 1)[0] for t in target_jobs}),
        "n_jobs": len(target_jobs),
        "targets": target_jobs,
        "group": "--local-groupid" in script,
        "attempt": int(attempt.group(1)) if attempt else None,
        "state": rec["JobState"],
        "partition": rec["Partition"],
        "cpus": int(rec["NumCPUs"]),
        "mem_mb": mem_mb(tres["mem"]) if "mem" in tres else None,
        "time_min": minutes(rec["TimeLimit"]),
        "gres": rec.get("TresPerJob", "") or rec.get("TresPerNode", ""),
        "comment": rec.get("Comment", ""),
    }


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory):
    reason = why_no_live_cluster()
    if reason:
        pytest.skip(reason)
    profile = load_profile()
    parts = partitions(profile)
    parts["default"] = parts["default"] or CLUSTER_DEFAULT
    tmp = tmp_path_factory.mktemp("slurm")
    workdir = tmp / "run"
    small = tmp / "one_model.yaml"
    small.write_text(yaml.safe_dump(SWEEP))
    configs = [TINY, small]

    max_threads = max([1, *profile.get("set-threads", {}).values()])
    attempts = int(profile.get("retries", 0)) + 1
    per_job = max(resource(profile, r, "mem_mb", attempts) for r in ALL_RULES)
    cluster = SlurmCluster(
        tmp / "cluster",
        partitions={parts["default"]: {"default": True}, parts["gpu"]: {}, parts["cpu"]: {}},
        cpus=4 * max_threads,
        real_memory_mb=4 * per_job,
    )
    reference = ReferenceTraining(workdir, configs, tmp / "reference", threads=1)
    logs: list[Path] = []

    def start_reference():  # the labels exist once a train job is queued
        reference.threads = logged_threads(*logs).get("train", 1)
        reference.start()

    try:
        t = time.time()
        cluster.start()
        timings = {"cluster_start_s": time.time() - t}
        try:
            targets = () if FULL else (f"{MODEL_DIR}/training.json", f"{MODEL_DIR}/test_errors.json")
            t = time.time()
            logs.append(tmp / "run.log")
            killed = _run_and_kill_train(
                _snakemake(workdir, configs, *targets), logs[-1], workdir, RUN_TIMEOUT_S, start_reference
            )
            timings["run_s"] = time.time() - t
            records = cluster.jobs()
            jobs = [_job_info(cluster, i, rec) for i, rec in sorted(records.items(), key=lambda kv: int(kv[0]))]
            jobcomp = cluster.sacct_jobcomp()
            jobcomp_file = cluster.jobcomp_records()
        finally:
            t = time.time()
            cluster.stop()
            timings["cluster_stop_s"] = time.time() - t
        t = time.time()
        test_labels = _label_batches(workdir, MODEL["system"], "test")
        comparison = reference.compare(workdir / MODEL_DIR / "model.pt", test_labels if FULL else ())
        timings["reference_wait_s"] = time.time() - t
    finally:
        reference.close()
    print(f"\nSlurm test timings: {json.dumps({k: round(v, 1) for k, v in timings.items()})}")
    return {
        "profile": profile, "partitions": parts, "workdir": workdir, "jobs": jobs, "killed": killed,
        "jobcomp": jobcomp, "jobcomp_file": jobcomp_file, "config": configs,
        "threads": logged_threads(*logs), "reference": comparison,
    }


def _by_rule(jobs, rule):
    return [j for j in jobs if rule in j["rules"]]


# ---------------------------------------------------------------------------------------------- checks
@pytest.mark.slurm
def test_every_rule_ran_under_slurm_and_completed(slurm_run):
    jobs = slurm_run["jobs"]
    assert jobs, "no Slurm job recorded"
    assert RUN_RULES <= {r for j in jobs for r in j["rules"]}
    killed = slurm_run["killed"].get("job_id")
    for j in jobs:
        expected = "CANCELLED" if j["job_id"] == killed else "COMPLETED"
        assert j["state"] == expected, j
        # the job-completion file (sacct -c) agrees with slurmctld
        assert slurm_run["jobcomp"][j["job_id"]]["State"].split()[0] == expected, slurm_run["jobcomp"][j["job_id"]]
        assert slurm_run["jobcomp"][j["job_id"]]["Partition"] == j["partition"]
        assert slurm_run["jobcomp_file"][j["job_id"]]["Partition"] == j["partition"]
    assert not any(j["group"] for j in jobs), "no job is a Snakemake group"


@pytest.mark.slurm
def test_partitions_and_gpus(slurm_run):
    parts = slurm_run["partitions"]
    for j in slurm_run["jobs"]:
        (rule,) = j["rules"]
        if rule in GPU_RULES:
            assert j["partition"] == parts["gpu"], j
            assert re.search(r"gpu:1\b", j["gres"]), j
        elif rule in CPU_RULES:
            assert j["partition"] == parts["cpu"], j
            assert "gpu" not in j["gres"], j
        else:
            assert j["partition"] == parts["default"], j
            assert "gpu" not in j["gres"], j


@pytest.mark.slurm
def test_resources_are_the_profiles(slurm_run):
    p, logged = slurm_run["profile"], slurm_run["threads"]
    assert logged["label"] == threads(p, "label"), "label threads are not the profile's set-threads"
    for j in slurm_run["jobs"]:
        (rule,) = j["rules"]
        a = j["attempt"]
        expected = (logged[rule], resource(p, rule, "mem_mb", a), resource(p, rule, "runtime", a))
        assert (j["cpus"], j["mem_mb"], j["time_min"]) == expected, j
    labels = _by_rule(slurm_run["jobs"], "label")
    assert len(labels) == N_LABEL_JOBS and all(j["n_jobs"] == 1 for j in labels), labels


@pytest.mark.slurm
def test_one_command_submits_every_label_job_once(slurm_run):
    """Selection and labels in one invocation: every label batch is one Slurm job, submitted once, and every
    frame of the training set and the test set was labelled (computed or from the store) exactly once."""
    from collections import Counter

    labels = _by_rule(slurm_run["jobs"], "label")
    submitted = Counter(t for j in labels for t in j["targets"])
    assert len(submitted) == N_LABEL_JOBS, submitted
    assert max(submitted.values()) == 1, {t: n for t, n in submitted.items() if n > 1}
    run, m = slurm_run["workdir"], MODEL
    selection = json.loads((run / f"results/{m['system']}/selection/md/{m['method']}/seed{m['seed']}.json").read_text())
    batches = _label_batches(run, m["system"], f"selection/md/{m['method']}/seed{m['seed']}")
    frames = [a for path in batches for a in read(path, index=":")]
    assert [a.info["frame"] for a in frames] == selection["indices"][: len(frames)] and len(frames) >= m["n"]
    test = [a.info["frame"] for path in _label_batches(run, m["system"], "test") for a in read(path, index=":")]
    assert test == [0, 1]


@pytest.mark.slurm
def test_cancelled_train_job_is_retried_with_more_resources(slurm_run):
    p, killed = slurm_run["profile"], slurm_run["killed"]
    assert killed.get("job_id"), "no running train job was seen to cancel"
    train = _by_rule(slurm_run["jobs"], "train")
    assert [(j["attempt"], j["state"]) for j in train] == [(1, "CANCELLED"), (2, "COMPLETED")], train
    first, second = train
    assert first["job_id"] == killed["job_id"]
    assert first["targets"] == second["targets"]
    assert second["mem_mb"] == resource(p, "train", "mem_mb", 2) > first["mem_mb"] == resource(p, "train", "mem_mb", 1)
    assert second["time_min"] == resource(p, "train", "runtime", 2) > first["time_min"]


@pytest.mark.slurm
def test_retried_training_gives_the_undisturbed_results(slurm_run):
    """The retried job's model equals an undisturbed training on the same labels, tensor for tensor."""
    run, m, ref = slurm_run["workdir"], MODEL, slurm_run["reference"]
    assert ref["n_frames"] == m["n"] and not ref["failed"], ref
    assert ref["keys_equal"] and ref["n_tensors"] > 0, ref
    assert ref["different"] == [], f"weights differ after the retry: {ref['different']}"
    info = json.loads((run / MODEL_DIR / "training.json").read_text())
    assert (info["n_selected"], info["n_trained"], info["n_label_failures"]) == (m["n"], m["n"], 0)
    if not FULL:
        return
    (row,) = list(csv.DictReader(open(run / "results" / "report" / "summary.csv")))
    assert (row["system"], row["method"], int(row["n_train"]), int(row["seed"])) == (
        m["system"], m["method"], m["n"], m["seed"]
    )
    for column in ("energy_rmse_eV_atom", "force_rmse_eV_A", "force_l4_eV_A", "force_max_error_eV_A"):
        assert float(row[column]) == pytest.approx(ref["errors"][column], rel=1e-9, abs=1e-12), column


def _label_batches(run: Path, system: str, subset: str) -> list[Path]:
    """A subset's label batches (``selection/<pool>/<method>/seed<seed>`` or ``test``), in batch order."""
    (labels,) = (run / "results" / system / "labels").iterdir()
    return sorted((labels / subset).glob("batch*.extxyz"), key=lambda p: int(p.stem.removeprefix("batch")))


def _merge(base: dict, extra: dict) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
