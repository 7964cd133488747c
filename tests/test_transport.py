"""Transport physics: unwrapping, self-diffusion and conductivity over a lag window in ps, the diffusive
regime check and the honesty of the block-average errors."""

import numpy as np
import pytest
from ase import Atoms
from scipy import constants

from confselect import transport as tr

L_BOX = 20.0  # A


def _random_walk_frames(n_steps, d_by_species, n_each, dt_fs, seed, box_A=L_BOX, drift_A_fs=None):
    """Wrapped frames of independent Gaussian random walks, step variance 2 D dt per dimension."""
    rng = np.random.default_rng(seed)
    symbols = [s for s in d_by_species for _ in range(n_each)]
    d = np.repeat(np.array(list(d_by_species.values()), dtype=float), n_each)
    steps = rng.normal(size=(n_steps - 1, len(symbols), 3)) * np.sqrt(2.0 * d * dt_fs)[None, :, None]
    path = np.concatenate([np.zeros((1, len(symbols), 3)), np.cumsum(steps, axis=0)])
    path += rng.uniform(0.0, box_A, size=(1, len(symbols), 3))
    if drift_A_fs is not None:
        path += np.arange(n_steps)[:, None, None] * dt_fs * np.asarray(drift_A_fs)
    return [Atoms(symbols, positions=p % box_A, cell=[box_A] * 3, pbc=True) for p in path]


def _d_after_com_removal(d_by_species, n_each):
    """Expected D (A^2/fs) of independent walkers measured relative to their mass-weighted centre of mass.

    For r_i - R with R = sum_j m_j r_j / M: D_i' = D_i (1 - 2 m_i / M) + sum_j m_j^2 D_j / M^2.
    """
    masses = {s: Atoms(s).get_masses()[0] for s in d_by_species}
    total = n_each * sum(masses.values())
    common = n_each * sum(masses[s] ** 2 * d for s, d in d_by_species.items()) / total**2
    return {s: d * (1 - 2 * masses[s] / total) + common for s, d in d_by_species.items()}


# ------------------------------------------------------------------------------------------------------ unwrapping


def test_unwrap_recovers_straight_line_crossing_boundaries():
    cell = np.array([[10.0, 0.0, 0.0], [2.0, 9.0, 0.0], [1.0, -1.5, 11.0]])  # triclinic, A
    start = np.array([[1.0, 2.0, 3.0], [9.5, 8.0, 10.5]])
    velocity = np.array([[3.7, -2.9, 4.1], [-4.2, 1.3, -3.3]])  # A per frame, < half a cell height
    n_frames = 40
    true = start[None] + np.arange(n_frames)[:, None, None] * velocity[None]
    frames = []
    for p in true:
        atoms = Atoms("NaCl", positions=p, cell=cell, pbc=True)
        atoms.wrap()
        frames.append(atoms)
    # the path crosses the boundaries many times
    assert np.abs(np.floor(frames[0].cell.scaled_positions(true[-1]))).sum() >= 10
    np.testing.assert_allclose(tr.unwrap(frames), true - true[0] + frames[0].positions, atol=1e-9)


def test_unwrap_follows_fractional_coordinates_in_a_changing_cell():
    n_frames = 60
    s_true = np.array([0.9, 0.1, 0.5]) + np.arange(n_frames)[:, None] * np.array([0.23, -0.31, 0.07])
    cells = [np.diag([12.0, 12.0, 12.0]) * (1 + 0.002 * k) for k in range(n_frames)]
    frames = [Atoms("Cl", scaled_positions=[s % 1.0], cell=c, pbc=True) for s, c in zip(s_true, cells)]
    expected = np.array([(s - np.floor(s_true[0])) @ c for s, c in zip(s_true, cells)])
    np.testing.assert_allclose(tr.unwrap(frames)[:, 0, :], expected, atol=1e-9)


# ------------------------------------------------------------------------------------------------------- diffusion


def test_self_diffusion_recovers_random_walk_coefficients():
    d_true = {"Na": 1.1e-4, "Cl": 0.9e-4}  # A^2/fs
    dt = 5.0
    frames = _random_walk_frames(4000, d_true, 200, dt, seed=2)
    result = tr.self_diffusion(frames, dt, (0.5, 1.5))
    assert list(result) == ["Na", "Cl"]
    for s, d in _d_after_com_removal(d_true, 200).items():
        value, sem = result[s]["D_A2_fs"], result[s]["D_A2_fs_sem"]
        assert 0 < sem < 0.1 * d
        assert abs(value - d) < 4 * sem, (s, value, sem)
        assert result[s]["D_1e-9_m2_s"] == pytest.approx(value * 1e4)
        assert result[s]["n_atoms"] == 200
    assert result["Na"]["D_A2_fs"] > result["Cl"]["D_A2_fs"]
    assert result["Na"]["fit_window_ps"] == [0.5, 1.5]
    assert result["Na"]["block_length_ps"] == pytest.approx(799 * dt / 1000)
    assert result["Na"]["msd_exponent"] == pytest.approx(1.0, abs=0.05)  # a random walk is diffusive


def test_self_diffusion_removes_centre_of_mass_drift():
    d_true = {"K": 1.0e-4, "Cl": 1.0e-4}
    still = _random_walk_frames(1500, d_true, 50, 5.0, seed=3)
    drifting = _random_walk_frames(1500, d_true, 50, 5.0, seed=3, drift_A_fs=[2e-3, -1e-3, 5e-4])
    a = tr.self_diffusion(still, 5.0, (0.2, 0.6), species=["K"])
    b = tr.self_diffusion(drifting, 5.0, (0.2, 0.6), species=["K"])
    assert list(b) == ["K"]
    assert b["K"]["D_A2_fs"] == pytest.approx(a["K"]["D_A2_fs"], rel=1e-8)


# ---------------------------------------------------------------------------------------------------- conductivity


def test_conductivity_unit_conversion_hand_case():
    # slope 6 e^2 A^2/fs, V = 1000 A^3, kB T = 1 eV: sigma = 1e-3 e^2/(A eV fs), worked out in SI units
    temperature = constants.e / constants.k  # K, kB T = 1 eV
    slope_si = 6.0 * constants.e**2 * 1e-20 / 1e-15  # C^2 m^2 / s
    sigma_si = slope_si / (6.0 * 1000e-30 * constants.k * temperature)  # S/m
    assert sigma_si / 100 == pytest.approx(16.02176634, rel=1e-9)
    assert tr.conductivity_S_cm(6.0, 1000.0, temperature) == pytest.approx(sigma_si / 100, rel=1e-5)


def test_einstein_helfand_hand_computed_three_frame_trajectory():
    # The cation steps +1 A along x per fs (crossing the boundary), the anion stays: M_x = 0, 1, 2 e A.
    # MSD(1 fs) = 1, MSD(2 fs) = 4 e^2 A^2, so the fitted slope is 3 e^2 A^2/fs.
    box, temperature = 10.0, 1000.0
    frames = [
        Atoms("NaCl", positions=[[(9.5 + k) % box, 5.0, 5.0], [2.0, 2.0, 2.0]], cell=[box] * 3, pbc=True)
        for k in range(3)
    ]
    with pytest.raises(ValueError, match="beyond 0.5 of a block"):
        tr.ionic_conductivity(frames, 1.0, {"Na": 1.0, "Cl": -1.0}, temperature, (0.001, 0.002), n_blocks=1)
    tr.MAX_WINDOW_FRACTION_OF_BLOCK, saved = 1.0, tr.MAX_WINDOW_FRACTION_OF_BLOCK
    try:
        result = tr.ionic_conductivity(frames, 1.0, {"Na": 1.0, "Cl": -1.0}, temperature, (0.001, 0.002), n_blocks=1)
    finally:
        tr.MAX_WINDOW_FRACTION_OF_BLOCK = saved
    slope_si = 3.0 * constants.e**2 * 1e-20 / 1e-15
    sigma_si = slope_si / (6.0 * box**3 * 1e-30 * constants.k * temperature)
    assert result["sigma_S_cm"] == pytest.approx(sigma_si / 100, rel=1e-5)
    assert np.isnan(result["sigma_S_cm_sem"])
    assert result["volume_A3"] == pytest.approx(1000.0)


def test_einstein_helfand_matches_nernst_einstein_for_uncorrelated_ions():
    d_true = {"Na": 1.2e-4, "Cl": 0.8e-4}
    dt, temperature = 5.0, 1100.0
    frames = _random_walk_frames(16000, d_true, 10, dt, seed=4)
    result = tr.ionic_conductivity(frames, dt, {"Na": 1.0, "Cl": -1.0}, temperature, (0.2, 0.6), n_blocks=40)
    # M = sum q r is unchanged by removing the centre-of-mass drift; the self-diffusion of 20 independent
    # walkers is not (about 5 % lower), so the two estimates have slightly different expectations
    expected_eh = tr.conductivity_S_cm(6.0 * 10 * sum(d_true.values()), L_BOX**3, temperature)
    expected_ne = tr.conductivity_S_cm(6.0 * 10 * sum(_d_after_com_removal(d_true, 10).values()), L_BOX**3,
                                       temperature)
    eh, eh_sem = result["sigma_S_cm"], result["sigma_S_cm_sem"]
    ne, ne_sem = result["sigma_NE_S_cm"], result["sigma_NE_S_cm_sem"]
    assert 0 < eh_sem < 0.3 * eh
    assert abs(eh - ne) < 3 * np.hypot(eh_sem, ne_sem)
    assert abs(ne - expected_ne) < 4 * ne_sem
    assert abs(eh - expected_eh) < 3 * eh_sem
    assert result["haven_ratio"] == pytest.approx(ne / eh)


def test_einstein_helfand_sees_ion_pairs_that_nernst_einstein_misses():
    """Cation-anion pairs moving together carry no current: sigma_EH = 0 while sigma_NE > 0."""
    rng = np.random.default_rng(5)
    n_pairs, n_frames, box = 20, 300, 15.0
    centres = rng.uniform(0, box, (n_pairs, 3)) + np.cumsum(rng.normal(0, 0.05, (n_frames, n_pairs, 3)), axis=0)
    positions = np.concatenate([centres, centres + np.array([2.8, 0.0, 0.0])], axis=1)
    frames = [Atoms(["Na"] * n_pairs + ["Cl"] * n_pairs, positions=p % box, cell=[box] * 3, pbc=True)
              for p in positions]
    result = tr.ionic_conductivity(frames, 2.0, {"Na": 1.0, "Cl": -1.0}, 1100.0, (0.02, 0.08), n_blocks=3)
    assert abs(result["sigma_S_cm"]) < 1e-8 * result["sigma_NE_S_cm"]
    assert result["sigma_NE_S_cm"] > 0


def test_conductivity_requires_every_charge():
    frames = _random_walk_frames(30, {"Na": 1e-4, "Cl": 1e-4}, 2, 1.0, seed=6)
    with pytest.raises(ValueError, match="Cl"):
        tr.ionic_conductivity(frames, 1.0, {"Na": 1.0}, 1100.0, (0.002, 0.005), n_blocks=2)


# ------------------------------------------------------------------------------------------- window and errors


def test_the_window_is_the_same_lag_times_for_runs_of_different_length():
    """A fraction-of-block window would fit a 2 ps run at 0.08-0.24 ps and a 20 ps run at 0.8-2.4 ps; a
    window in ps fits both over the same lags, and both estimate the same D."""
    d_true = {"Na": 1.0e-4, "Cl": 1.0e-4}
    short = _random_walk_frames(2000, d_true, 100, 5.0, seed=11)   # 10 ps
    long = _random_walk_frames(8000, d_true, 100, 5.0, seed=12)    # 40 ps
    a = tr.self_diffusion(short, 5.0, (0.2, 0.8))["Na"]
    b = tr.self_diffusion(long, 5.0, (0.2, 0.8))["Na"]
    assert a["fit_window_ps"] == b["fit_window_ps"] == [0.2, 0.8]
    assert a["block_length_ps"] < b["block_length_ps"]
    expected = _d_after_com_removal(d_true, 100)["Na"]
    for result in (a, b):
        assert abs(result["D_A2_fs"] - expected) < 4 * result["D_A2_fs_sem"]
    assert b["D_A2_fs_sem"] < a["D_A2_fs_sem"]  # four times the run: a smaller, honest error


def test_window_beyond_half_a_block_or_without_lags_is_rejected():
    frames = _random_walk_frames(200, {"Na": 1e-4, "Cl": 1e-4}, 5, 5.0, seed=13)  # blocks of 40 frames, 0.195 ps
    with pytest.raises(ValueError, match="beyond 0.5 of a block"):
        tr.self_diffusion(frames, 5.0, (0.02, 0.15))
    with pytest.raises(ValueError, match="0 < start < end"):
        tr.self_diffusion(frames, 5.0, (0.05, 0.02))
    with pytest.raises(ValueError, match="lag"):
        tr.self_diffusion(frames, 5.0, (0.0051, 0.0059))


def test_msd_exponent_tells_ballistic_from_diffusive_motion():
    """Atoms in straight lines (ballistic, MSD ~ t^2) have exponent 2; random walkers 1."""
    n, box = 600, 50.0
    rng = np.random.default_rng(14)
    velocity = rng.normal(0, 0.01, (10, 3))  # A/fs
    start = rng.uniform(0, box, (10, 3))
    frames = [Atoms(["Na"] * 5 + ["Cl"] * 5, positions=(start + k * 5.0 * velocity) % box, cell=[box] * 3, pbc=True)
              for k in range(n)]
    ballistic = tr.self_diffusion(frames, 5.0, (0.05, 0.2))["Na"]["msd_exponent"]
    walk = tr.self_diffusion(_random_walk_frames(600, {"Na": 1e-4, "Cl": 1e-4}, 20, 5.0, seed=15), 5.0,
                             (0.05, 0.2))["Na"]["msd_exponent"]
    assert ballistic == pytest.approx(2.0, abs=0.02)
    assert walk == pytest.approx(1.0, abs=0.15)


def test_block_errors_cover_the_true_coefficient_as_often_as_they_claim():
    """Over independent trajectories, D falls within t(4 dof, 95 %) = 2.776 standard errors of the truth in
    about 95 % of them: the error is honest for the trajectory length, neither too small nor inflated."""
    d_true = {"Na": 1.0e-4, "Cl": 1.0e-4}
    expected = _d_after_com_removal(d_true, 16)["Na"]
    z = []
    for seed in range(60):
        result = tr.self_diffusion(_random_walk_frames(1000, d_true, 16, 5.0, seed=100 + seed), 5.0, (0.1, 0.4))["Na"]
        z.append((result["D_A2_fs"] - expected) / result["D_A2_fs_sem"])
    z = np.abs(np.array(z))
    assert 0.85 <= np.mean(z < 2.776) <= 1.0
    assert np.mean(z < 0.741) <= 0.75  # t4's 50 % point: the errors are not inflated either
