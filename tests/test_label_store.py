"""The label store: one entry per configuration and labeller settings, written atomically."""

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read

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
