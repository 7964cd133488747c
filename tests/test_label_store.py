"""The label store: one entry per configuration and labeller settings, written atomically."""

from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write

from confselect.labelling import LabelFailure, failure_record
from confselect.labelling.store import LabelStore, configuration_key
from confselect.training import failure_record_at, labelled_frames


def salt(shift=0.0):
    return Atoms("NaCl", positions=[[0, 0, 0], [2.8 + shift, 0, 0]], cell=[5.6] * 3, pbc=True)


def test_key_ignores_noise_below_a_microangstrom_but_not_real_moves():
    assert configuration_key(salt()) == configuration_key(salt(1e-9))
    assert configuration_key(salt()) != configuration_key(salt(1e-3))


def test_put_then_get_round_trip(tmp_path):
    store = LabelStore(tmp_path, "classical-0000")
    atoms = salt()
    assert store.get(atoms) is None
    labelled = atoms.copy()
    labelled.calc = SinglePointCalculator(labelled, energy=-7.5, forces=np.ones((2, 3)))
    path = store.put(labelled, original=atoms)
    assert store.get(atoms) == path
    back = read(path)
    assert back.get_potential_energy() == -7.5
    assert not list(tmp_path.rglob("*.part"))
    # another labeller's settings live elsewhere
    assert LabelStore(tmp_path, "classical-1111").get(atoms) is None


def test_failure_records_are_skipped_by_the_training_set_builder(tmp_path):
    good = salt()
    good.calc = SinglePointCalculator(good, energy=-1.0, forces=np.zeros((2, 3)))
    good_path = tmp_path / "0.extxyz"
    good.write(good_path)
    bad_path = tmp_path / "1.extxyz"
    failure_record(salt(0.1), "cp2k", LabelFailure("SCF not converged", scf_iterations=50)).write(bad_path)
    frames, failed = labelled_frames([good_path, bad_path])
    assert len(frames) == 1 and failed == [f"{bad_path}@0"]
    record = failure_record_at(failed[0])
    assert record.info["label_status"] == "failed" and record.info["label_scf_iterations"] == 50


def test_a_gathered_label_file_names_its_failures_by_index(tmp_path):
    good = salt()
    good.calc = SinglePointCalculator(good, energy=-1.0, forces=np.zeros((2, 3)))
    bad = failure_record(salt(0.1), "cp2k", LabelFailure("SCF not converged"))
    gathered = tmp_path / "test_set.extxyz"
    write(gathered, [good, bad, good], format="extxyz")
    for paths in (gathered, str(gathered), [gathered]):  # one file, as a rule's single input gives it
        frames, failed = labelled_frames(paths)
        assert len(frames) == 2 and failed == [f"{gathered}@1"]
        assert frames[1].get_potential_energy() == -1.0


def test_a_training_set_is_the_first_n_frames_of_its_batches_failures_included(tmp_path):
    """A training set of n takes the first n selected frames across the label batches, whether or not they
    have a label: a failure record counts against n and is not replaced by a later frame."""
    batches = []
    for k, energies in enumerate([(-1.0, None, -3.0), (-4.0, -5.0, -6.0)]):
        frames = []
        for energy in energies:
            if energy is None:
                frames.append(failure_record(salt(0.1), "cp2k", LabelFailure("SCF not converged")))
            else:
                atoms = salt()
                atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=np.zeros((2, 3)))
                frames.append(atoms)
        batches.append(tmp_path / f"batch{k}.extxyz")
        write(batches[-1], frames, format="extxyz")
    frames, failed = labelled_frames(batches, first=4)
    assert [a.get_potential_energy() for a in frames] == [-1.0, -3.0, -4.0]
    assert failed == [f"{batches[0]}@1"]
    assert len(labelled_frames(batches)[0]) == 5


# ---------------------------------------------------------------------------------------------- claims
CLAIM_WORKER = """
import sys, time
sys.path.insert(0, {src!r})
import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from confselect.labelling.store import LabelStore
atoms = Atoms("NaCl", positions=[[0, 0, 0], [2.8, 0, 0]], cell=[5.6] * 3, pbc=True)
store = LabelStore({root!r}, "cp2k-0000")
with store.claim(atoms, poll_s=0.05):
    if store.get(atoms) is None:
        with open({ledger!r}, "a") as ledger:
            ledger.write("computed\\n")
        time.sleep(1.0)
        out = atoms.copy()
        out.calc = SinglePointCalculator(out, energy=-1.0, forces=np.zeros((2, 3)))
        store.put(out, original=atoms)
print("done", flush=True)
"""


def test_concurrent_jobs_compute_a_frame_once(tmp_path):
    """Four processes ask for the same frame at once (a rerun beside the jobs of a killed run): one computes,
    the others wait for its label."""
    import subprocess
    import sys
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[1] / "src")
    code = CLAIM_WORKER.format(src=src, root=str(tmp_path), ledger=str(tmp_path / "ledger"))
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs) and all("done" in o for o in outs)
    assert (tmp_path / "ledger").read_text().count("computed") == 1
    assert LabelStore(tmp_path, "cp2k-0000").get(salt()) is not None
    assert not list(tmp_path.rglob("*.lock"))


def test_a_claim_whose_holder_is_gone_is_taken_over(tmp_path):
    import json
    import os
    import socket
    import time

    store = LabelStore(tmp_path, "cp2k-0000")
    lock = store.path(salt()).with_suffix(".lock")
    lock.parent.mkdir(parents=True)
    # a process of this host that no longer exists: taken over at once
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": 2**22 + 12345}))
    start = time.time()
    with store.claim(salt(), poll_s=0.05):
        assert lock.exists()
    assert time.time() - start < 1.0
    # a holder on another host: waited for while it touches its claim, taken over once it stops
    import threading

    lock.write_text(json.dumps({"host": "node-that-died", "pid": 1}))
    acquired = threading.Event()

    def waiter():
        with store.claim(salt(), stale_after_s=60.0, poll_s=0.05, log=lambda *a, **k: None):
            acquired.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    assert not acquired.wait(0.5)  # fresh claim: still waiting
    old = time.time() - 120.0
    os.utime(lock, (old, old))  # not touched for 120 s > 60 s
    assert acquired.wait(5.0)
    thread.join()
    assert not lock.exists()


# ------------------------------------------------------------------------------------------ label batches
class CountingLabeller:
    """The classical teacher (the real labeller of the demo), recording which frames it computed (by the
    position of the second ion)."""

    def __init__(self, calls):
        import yaml

        from confselect.classical import ClassicalTeacher

        system = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text())
        nacl = system["systems"]["NaCl"]
        self.teacher = ClassicalTeacher({"charges_e": nacl["charges_e"], "potential": nacl["potential"]})
        self.calls = calls

    def label(self, atoms, workdir):
        self.calls.append(round(float(atoms.positions[1, 0]), 3))
        return self.teacher.label(atoms, workdir)


def test_a_batch_labels_free_frames_first_and_reuses_a_frame_another_job_computes(tmp_path, monkeypatch):
    """Two selections' batches share a frame: the second job labels its other frames while the first holds the
    shared frame's claim, then reuses the first job's label. Every frame is computed once; the batch file
    keeps batch order and says where each label came from."""
    import threading

    from confselect.labelling import frame_job

    calls = []
    monkeypatch.setattr(frame_job, "make_labeller", lambda name, settings, threads: CountingLabeller(calls))
    store = LabelStore(tmp_path / "store", "fake-00000000")
    shared, own = salt(0.1), salt(0.2)
    held, release = threading.Event(), threading.Event()

    def first_job():  # holds the shared frame's claim until told, then stores its label
        with store.claim(shared, poll_s=0.05):
            held.set()
            release.wait(30)
            labelled = CountingLabeller(calls).label(shared, None)
            store.put(labelled, original=shared)

    other = threading.Thread(target=first_job)
    other.start()
    held.wait(30)
    log = []
    timer = threading.Timer(0.5, release.set)
    timer.start()
    out = tmp_path / "labels" / "batch0.extxyz"
    counts = frame_job.label_batch({7: shared, 3: own}, "fake", {}, store, out, "pool", 1, log=log.append)
    other.join()
    assert counts == {"labelled": 1, "reused": 1}
    assert calls == [3.0, 2.9]  # its own frame first (x = 2.8 + 0.2), then the other job's (2.8 + 0.1)
    assert any("being labelled by another job" in line for line in log)
    written = read(out, index=":")
    assert [a.info["frame"] for a in written] == [7, 3]
    assert [a.info["label_origin"] for a in written] == ["store", "computed"]
    teacher = CountingLabeller([]).teacher
    assert [a.get_potential_energy() for a in written] == pytest.approx(
        [teacher.label(shared).get_potential_energy(), teacher.label(own).get_potential_energy()])
    # a second run of the same batch computes nothing
    counts = frame_job.label_batch({7: shared, 3: own}, "fake", {}, store, out, "pool", 1, log=log.append)
    assert counts == {"reused": 2} and len(calls) == 2
