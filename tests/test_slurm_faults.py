"""Faults of a CP2K campaign on a real single-node Slurm, survived and counted: nothing recomputed, nothing lost.

The tiny workflow (one model, four training frames and two held-out frames of an 8-ion NaCl cell, labelled
by the real ``cp2k.psmp`` at cheap settings, two frames per label job) runs through
``--workflow-profile profiles/slurm``, and three faults strike while it labels:

1. ``scancel`` of a running label job, after at least one label was computed;
2. ``kill -9`` of the Snakemake driver while label jobs still run on the cluster, then ``snakemake
   --unlock`` and the same command again (its label jobs run beside the orphans of the first driver);
3. a CP2K that exits non-zero on one training frame.

The labeller's ``executable`` is a small script that runs ``cp2k.psmp`` and appends every start and every
end (with its exit code) to a ledger, and crashes the frame named in a file instead of running CP2K.
From the ledger, the label store and the run's outputs, the test counts labels computed more than once
(must be 0) and computed labels lost (must be 0), and checks that the crashed frame became one failure
record that training skipped and counted. The counts are printed (``-s``).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from ase.io import read

from slurm_cluster import SlurmCluster, why_no_live_cluster
from test_slurm import CLUSTER_DEFAULT, PROFILE_DIR, REPO, SNAKEMAKE, TINY, _squeue, load_profile, partitions

pytestmark = [pytest.mark.slurm, pytest.mark.cp2k]

MODEL_DIR = "results/NaCl/models/md/random/n4/seed0"
TARGETS = (f"{MODEL_DIR}/training.json", f"{MODEL_DIR}/test_errors.json")
TIMEOUT_S = 1500

CP2K_WRAPPER = """#!/bin/sh
# Runs cp2k.psmp with the arguments it is given, in the label's work directory
# (.../labels/<id>/<subset>/.<role>_<frame>.work), recording in a ledger when each frame's calculation starts
# and how it ends (as <role>/<frame>); a frame listed in the crash file exits non-zero instead of running CP2K.
name=$(basename "$PWD"); name=${{name#.}}; name=${{name%.work}}
label="${{name%%_*}}/${{name#*_}}"
echo "start $label" >> {ledger}
if grep -qx "$label" {crash} 2>/dev/null; then
    echo "CP2K crashed (injected by the test)" >&2
    echo "end $label 7" >> {ledger}
    exit 7
fi
cp2k.psmp "$@"
rc=$?
echo "end $label $rc" >> {ledger}
exit $rc
"""


def campaign_config(tmp: Path, executable: Path) -> dict:
    return {
        "sweep": {"systems": ["NaCl"], "methods": ["random"], "n_train": [4], "seeds": [0], "full": {"enabled": False}},
        "test": {"generators": {"md": {"frame_interval_fs": 1000.0}}},  # two held-out frames
        # 8 ions: a few seconds of CP2K per frame
        "systems": {"NaCl": {"labeller": "cp2k", "structure": {"composition": {"Na": 4, "Cl": 4}}}},
        "labelling": {
            "store": str(tmp / "label_store"),
            "batch_size": 2,  # three label jobs: two of the training frames, one of the held-out frames
            "cp2k": {
                "cutoff_Ry": 150.0, "rel_cutoff_Ry": 30.0, "xc_smoothing": False, "vdw": None, "eps_scf": 1.0e-5,
                "basis": {"Na": "SZV-MOLOPT-SR-GTH-q9", "Cl": "SZV-MOLOPT-SR-GTH-q7"},
                "executable": str(executable), "threads": 1,
            },
        },
    }


def ledger_events(ledger: Path) -> list[tuple[str, str, int | None]]:
    events = []
    for line in ledger.read_text().splitlines() if ledger.exists() else []:
        kind, label, *rc = line.split()
        events.append((kind, label, int(rc[0]) if rc else None))
    return events


def completed(ledger: Path) -> Counter:
    """Successful CP2K calculations per label."""
    return Counter(label for kind, label, rc in ledger_events(ledger) if kind == "end" and rc == 0)


def _command(workdir: Path, configs, *extra) -> list[str]:
    return [*SNAKEMAKE, *TARGETS, "-s", str(REPO / "Snakefile"), "-d", str(workdir),
            "--workflow-profile", str(PROFILE_DIR), "--configfile", *map(str, configs),
            "--slurm-init-seconds-before-status-checks", "2",
            # two Slurm jobs at a time: labels are still queued and running when the faults strike, instead of
            # all three label jobs finishing together
            "--jobs", "2", *extra]


@pytest.fixture(scope="module")
def faults(tmp_path_factory):
    reason = why_no_live_cluster()
    if reason:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("slurm_faults")
    workdir, ledger, crash = tmp / "run", tmp / "ledger", tmp / "crash"
    executable = tmp / "ledger_cp2k.sh"
    executable.write_text(CP2K_WRAPPER.format(ledger=ledger, crash=crash))
    executable.chmod(0o755)
    campaign = tmp / "campaign.yaml"
    campaign.write_text(yaml.safe_dump(campaign_config(tmp, executable)))
    configs = [TINY, campaign]
    parts = partitions(load_profile())
    cluster = SlurmCluster(tmp / "cluster", partitions={parts["default"] or CLUSTER_DEFAULT: {"default": True},
                                                        parts["gpu"]: {}, parts["cpu"]: {}},
                           cpus=64, real_memory_mb=4_000_000)  # the profile books 80 GB x attempt per CP2K label
    record = {"ledger": ledger, "workdir": workdir, "store": tmp / "label_store"}
    cluster.start()
    try:
        first = subprocess.Popen(_command(workdir, configs), stdout=open(tmp / "first.log", "w"),
                                 stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.time() + TIMEOUT_S
        cancelled = None
        try:
            while first.poll() is None:
                assert time.time() < deadline, "the first driver ran out of time"
                selection = workdir / "results/NaCl/selection/md/random/seed0.json"
                if "crashed" not in record and selection.exists():
                    # fault 3: the first training frame's CP2K crashes
                    frame = json.loads(selection.read_text())["indices"][0]
                    crash.write_text(f"pool/{frame}\n")
                    record["crashed"] = f"pool/{frame}"
                done = sum(completed(ledger).values())
                labels_running = [j for j, state, comment in _squeue()
                                  if state == "RUNNING" and comment.startswith("rule_label")]
                # the held-out frames' batch needs no selection and may label before it exists: the faults
                # strike once the crash is set, so that a training frame crashes in every run
                if "crashed" not in record:
                    time.sleep(0.5)
                    continue
                if cancelled is None and done >= 1 and labels_running:
                    # fault 1: a label job cancelled while it labels
                    cancelled = labels_running[0]
                    subprocess.run(["scancel", cancelled], check=True, timeout=30)
                    record.update(cancelled_job=cancelled, done_at_cancel=done)
                elif cancelled is not None and done > record["done_at_cancel"] and labels_running:
                    # fault 2: the driver killed while label jobs still run
                    first.send_signal(signal.SIGKILL)
                    first.wait()
                    record.update(killed_driver=True, done_at_kill=done, running_at_kill=labels_running)
                    break
                time.sleep(0.5)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
        assert record.get("killed_driver"), f"the faults did not all strike: {record}\n" + (tmp / "first.log").read_text()[-4000:]
        # the same command again, after releasing the dead driver's lock on the directory
        subprocess.run(_command(workdir, configs, "--unlock"), check=True, capture_output=True, timeout=300, cwd=REPO)
        second = subprocess.run(_command(workdir, configs), stdout=open(tmp / "second.log", "w"),
                                stderr=subprocess.STDOUT, timeout=TIMEOUT_S, cwd=REPO)
        record["second_rc"] = second.returncode
        record["second_log"] = (tmp / "second.log").read_text()
        while any(state in ("RUNNING", "PENDING", "SUSPENDED") for _, state, _ in _squeue()):
            assert time.time() < deadline + TIMEOUT_S, "orphaned jobs did not finish"
            time.sleep(1.0)  # orphans of the killed driver finish before the ledger is read
        record["jobs"] = cluster.jobs()
    finally:
        cluster.stop()
    return record


def labels_written(workdir: Path) -> dict:
    """Every label (or failure record) in the run's label batches, by ``<role>/<frame>``; a frame in two
    batches would fail the test (each of this run's frames is in one)."""
    label_dir = next((workdir / "results/NaCl/labels").iterdir())
    written = {}
    for path in label_dir.rglob("batch*.extxyz"):
        for atoms in read(path, index=":", format="extxyz"):
            key = f"{atoms.info['role']}/{atoms.info['frame']}"
            assert key not in written, f"{key} in two label batches"
            written[key] = atoms
    return written


def test_the_run_completes_after_every_fault(faults):
    assert faults["second_rc"] == 0, faults["second_log"][-5000:]
    for target in TARGETS:
        assert (faults["workdir"] / target).exists(), target
    states = {job_id: rec["JobState"] for job_id, rec in faults["jobs"].items()}
    assert states[faults["cancelled_job"]] == "CANCELLED"


def test_no_label_is_computed_twice_and_none_is_lost(faults):
    runs = completed(faults["ledger"])
    recomputed = {label: n - 1 for label, n in runs.items() if n > 1}
    store = next(faults["store"].iterdir())
    stored = {}
    for path in store.rglob("*.extxyz"):
        atoms = read(path, format="extxyz")
        stored[f"{atoms.info['role']}/{atoms.info['frame']}"] = atoms
    lost = sorted(set(runs) - {k for k, a in stored.items() if a.info.get("label_status") != "failed"})
    written = labels_written(faults["workdir"])
    selection = json.loads((faults["workdir"] / "results/NaCl/selection/md/random/seed0.json").read_text())
    needed = [f"pool/{i}" for i in selection["indices"][:4]] + ["test/0", "test/1"]
    missing = [label for label in needed if label not in written]
    print(f"\nfaults: {json.dumps({k: faults[k] for k in ('cancelled_job', 'done_at_cancel', 'done_at_kill', 'crashed')})}; "
          f"CP2K completions {sum(runs.values())} of {len(runs)} labels; recomputed {sum(recomputed.values())}; "
          f"lost {len(lost)}")
    assert recomputed == {}, recomputed
    assert lost == [], lost
    assert missing == [], missing  # every frame the model needs has its label or failure record


def test_a_crashed_cp2k_is_one_failure_record_that_training_counts(faults):
    record = labels_written(faults["workdir"])[faults["crashed"]]
    assert record.info["label_status"] == "failed"
    assert "7" in record.info["label_error"] and "injected by the test" in json.dumps(record.info, default=str)
    training = json.loads((faults["workdir"] / MODEL_DIR / "training.json").read_text())
    assert (training["n_selected"], training["n_trained"], training["n_label_failures"]) == (4, 3, 1)
