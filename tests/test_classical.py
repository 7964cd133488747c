"""The classical Tosi-Fumi + PPPM potential in LAMMPS: pool MD frames and the teacher labeller."""

import numpy as np
import pytest
import yaml

from conftest import REPO
from confselect.structures import random_melt
from confselect.classical import ClassicalTeacher, run_classical_md
from confselect.potentials import lammps_potential_commands

CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
NACL = CONFIG["systems"]["NaCl"]


def test_born_coefficients_make_dispersion_attractive():
    cmds = lammps_potential_commands(NACL)
    coeff = [c.split() for c in cmds if c.startswith("pair_coeff 1 2")][0]
    A, rho, sigma, C, D = map(float, coeff[3:8])
    assert (A, rho, sigma) == (0.21097, 0.317, 2.755)
    assert C > 0 and D < 0  # LAMMPS born adds +D/r^8; Tosi-Fumi's r^-8 term is attractive
    assert "set type 1 charge 1.0" in cmds and "set type 2 charge -1.0" in cmds


@pytest.fixture(scope="module")
def frames():
    protocol = dict(CONFIG["pool"]["md"], premelt_fs=400.0, ramp_fs=2000.0, frame_interval_fs=200.0)
    system = dict(NACL, structure=dict(NACL["structure"], composition={"Na": 16, "Cl": 16}))
    out = []
    run_classical_md(system, protocol, seed=3, on_frame=out.append)
    return out


def test_pool_frames_carry_energies_forces_and_metadata(frames):
    assert len(frames) == 10
    for k, atoms in enumerate(frames):
        assert atoms.get_chemical_formula() == "Cl16Na16"
        assert atoms.info["time_fs"] == pytest.approx(200.0 * (k + 1))
        # per-atom energies add up to the total (PPPM included)
        assert atoms.get_potential_energies().sum() == pytest.approx(atoms.get_potential_energy(), abs=1e-6)
        # Newton's third law: no net force on the cell
        assert np.abs(atoms.get_forces().sum(axis=0)).max() < 1e-6
        # molten salt cohesion: about -7 eV per ion pair
        assert -8.5 < atoms.get_potential_energy() / 16 < -6.0


def test_teacher_reproduces_pool_labels(frames):
    teacher = ClassicalTeacher(NACL)
    atoms = frames[-1]
    unlabelled = atoms.copy()
    labelled = teacher.label(unlabelled)
    assert labelled.get_potential_energy() == pytest.approx(atoms.get_potential_energy(), abs=1e-3)
    np.testing.assert_allclose(labelled.get_forces(), atoms.get_forces(), atol=2e-3)
    assert labelled.info["labeller"] == "classical"


def test_teacher_forces_are_the_energy_gradient(frames):
    teacher = ClassicalTeacher(NACL)
    atoms = frames[3].copy()
    force = teacher.label(atoms).get_forces()[5, 0]
    h = 1e-3
    energies = []
    for sign in (1, -1):
        moved = atoms.copy()
        moved.positions[5, 0] += sign * h
        energies.append(teacher.label(moved).get_potential_energy())
    assert -(energies[0] - energies[1]) / (2 * h) == pytest.approx(force, abs=2e-3)


def test_random_ionic_liquid_respects_density_and_spacing():
    atoms = random_melt({"Na": 32, "Cl": 32}, 1.5, 0, 2.2)
    density = atoms.get_masses().sum() / 6.02214076e23 / (atoms.get_volume() * 1e-24)
    assert density == pytest.approx(1.5, rel=1e-6)
    d = atoms.get_all_distances(mic=True)[np.triu_indices(len(atoms), 1)]
    assert d.min() >= 2.2


def test_pool_features_stack_the_frames(frames):
    from confselect.pool import pool_features

    features = pool_features(iter(frames))
    assert features.forces.shape == (10, 32, 3) and features.atomic_energies.shape == (10, 32)
    np.testing.assert_allclose(features.atomic_energies.sum(axis=1), features.energies, atol=1e-4)
    assert np.all(np.diff(features.times) == 200.0)
    no_atomic = [a.copy() for a in frames]
    for a in no_atomic:
        from ase.calculators.singlepoint import SinglePointCalculator

        a.calc = SinglePointCalculator(a, energy=-1.0, forces=np.zeros((len(a), 3)))
    assert pool_features(no_atomic).atomic_energies is None
