"""The label store: one entry per configuration and labeller settings, written atomically."""

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write

from confselect.labelling import LabelFailure, failure_record
from confselect.labelling.store import LabelStore, configuration_key
from confselect.training import labelled_frames


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
    assert len(frames) == 1 and failed == [str(bad_path)]
    record = read(bad_path)
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
