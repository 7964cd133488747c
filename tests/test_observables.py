"""Physics checks of the trajectory observables (RDFs, unwrapping, diffusion, conductivity, density, stability)."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from scipy import constants

from confselect import observables as ob

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


# ------------------------------------------------------------------------------------------------ block averages


def test_block_average_hand_case_and_leading_remainder_dropped():
    assert ob.block_average([1.0, 1.0, 3.0, 3.0], 2) == pytest.approx((2.0, 1.0))
    # the earliest sample (remainder of 5 % 2) is discarded as equilibration
    assert ob.block_average([100.0, 1.0, 1.0, 3.0, 3.0], 2) == pytest.approx((2.0, 1.0))


def test_block_average_white_noise_error_matches_sigma_over_sqrt_n():
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 2.0, size=20000)
    mean, sem = ob.block_average(x, 20)
    expected_sem = 2.0 / np.sqrt(len(x))
    assert abs(mean - 5.0) < 4 * expected_sem
    assert 0.6 * expected_sem < sem < 1.5 * expected_sem


def test_block_average_rejects_more_blocks_than_samples():
    with pytest.raises(ValueError, match="n_blocks"):
        ob.block_average([1.0, 2.0], 3)


# ------------------------------------------------------------------------------------------------------------ RDFs


def test_ideal_gas_rdf_is_one_within_counting_noise():
    rng = np.random.default_rng(1)
    n_each, n_frames, rmax, nbins = 400, 4, 9.5, 50
    frames = [
        Atoms(["Na"] * n_each + ["Cl"] * n_each, positions=rng.uniform(0, L_BOX, (2 * n_each, 3)),
              cell=[L_BOX] * 3, pbc=True)
        for _ in range(n_frames)
    ]
    rdf = ob.partial_rdfs(frames, rmax, nbins)
    assert set(rdf) == {"r", "sem", "Na-Na", "Na-Cl", "Cl-Cl"}
    r = rdf["r"]
    dr = rmax / nbins
    assert r.shape == (nbins,) and r[0] == pytest.approx(dr / 2) and r[-1] == pytest.approx(rmax - dr / 2)
    rho = n_each / L_BOX**3
    expected_counts = n_frames * n_each * rho * 4 * np.pi * r**2 * dr
    use = r > 1.0
    for pair, ideal in [("Na-Cl", 1.0), ("Na-Na", (n_each - 1) / n_each), ("Cl-Cl", (n_each - 1) / n_each)]:
        g = rdf[pair]
        assert np.all(np.abs(g[use] - ideal) < 5 / np.sqrt(expected_counts[use])), pair
        assert abs(g[r > 3.0].mean() - ideal) < 0.01, pair
        assert rdf["sem"][pair].shape == (nbins,)


def _cumulative_coordination(r, g, rho, r_cut):
    """n(r_cut) = 4 pi rho integral_0^r_cut g(r) r^2 dr (bin-centre rule)."""
    dr = r[1] - r[0]
    inside = r < r_cut
    return 4 * np.pi * rho * np.sum(g[inside] * r[inside] ** 2) * dr


def test_rock_salt_rdf_first_shells_and_coordination_numbers():
    a = 5.64
    crystal = bulk("NaCl", "rocksalt", a=a, cubic=True).repeat(3)
    rmax, nbins = 8.0, 320
    rdf = ob.partial_rdfs([crystal], rmax, nbins, pairs=["Na-Cl", ("Na", "Na")])
    assert set(rdf) == {"r", "sem", "Na-Cl", "Na-Na"}
    r, dr = rdf["r"], rmax / nbins
    rho = (len(crystal) / 2) / crystal.get_volume()  # per species, 1/A^3

    g = rdf["Na-Cl"]
    assert np.all(g[r < a / 2 - dr] == 0.0)
    assert abs(r[np.argmax(g)] - a / 2) < dr
    assert _cumulative_coordination(r, g, rho, 3.4) == pytest.approx(6.0, rel=1e-3)
    # second cation-anion shell at a*sqrt(3)/2 holds 8 more
    assert _cumulative_coordination(r, g, rho, 5.2) == pytest.approx(14.0, rel=1e-3)

    g_like = rdf["Na-Na"]
    assert np.all(g_like[r < a / np.sqrt(2) - dr] == 0.0)
    assert abs(r[np.argmax(g_like)] - a / np.sqrt(2)) < dr
    assert _cumulative_coordination(r, g_like, rho, 4.5) == pytest.approx(12.0, rel=1e-3)


def test_rdf_of_skewed_primitive_cell_equals_cubic_cell():
    """The same crystal in a 60-degree primitive cell must give the same g(r) (minimum image in skewed cells)."""
    a, rmax, nbins = 5.64, 8.0, 160
    cubic = bulk("NaCl", "rocksalt", a=a, cubic=True).repeat(3)
    skewed = bulk("NaCl", "rocksalt", a=a).repeat(6)
    g_cubic = ob.partial_rdfs([cubic], rmax, nbins)
    g_skewed = ob.partial_rdfs([skewed], rmax, nbins)
    for pair in ("Na-Na", "Na-Cl", "Cl-Cl"):
        np.testing.assert_allclose(g_skewed[pair], g_cubic[pair], atol=1e-9)


def test_rdf_rejects_rmax_beyond_half_cell_height():
    crystal = bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat(2)  # height 11.28 A
    with pytest.raises(ValueError, match="rmax"):
        ob.partial_rdfs([crystal], 5.7, 50)
    assert ob.partial_rdfs([crystal], 5.6, 50)["r"].shape == (50,)


def test_rdf_error_definition():
    r = np.linspace(0.0, 6.0, 301)
    g = np.exp(-((r - 2.8) ** 2))
    assert ob.rdf_error(r, g, g) == 0.0
    assert ob.rdf_error(r, g + 0.3, g) == pytest.approx(0.3)
    # difference equal to r/6 on [0, 6]: sqrt(int_0^6 (r/6)^2 dr / 6) = 1/sqrt(3)
    assert ob.rdf_error(r, g + r / 6.0, g) == pytest.approx(1 / np.sqrt(3), rel=1e-4)
    with pytest.raises(ValueError):
        ob.rdf_error(r, g[:-1], g[:-1])


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
    np.testing.assert_allclose(ob.unwrap(frames), true - true[0] + frames[0].positions, atol=1e-9)


def test_unwrap_follows_fractional_coordinates_in_a_changing_cell():
    n_frames = 60
    s_true = np.array([0.9, 0.1, 0.5]) + np.arange(n_frames)[:, None] * np.array([0.23, -0.31, 0.07])
    cells = [np.diag([12.0, 12.0, 12.0]) * (1 + 0.002 * k) for k in range(n_frames)]
    frames = [Atoms("Cl", scaled_positions=[s % 1.0], cell=c, pbc=True) for s, c in zip(s_true, cells)]
    expected = np.array([(s - np.floor(s_true[0])) @ c for s, c in zip(s_true, cells)])
    np.testing.assert_allclose(ob.unwrap(frames)[:, 0, :], expected, atol=1e-9)


# ------------------------------------------------------------------------------------------------------- diffusion


def test_self_diffusion_recovers_random_walk_coefficients():
    d_true = {"Na": 1.1e-4, "Cl": 0.9e-4}  # A^2/fs
    dt = 5.0
    frames = _random_walk_frames(4000, d_true, 200, dt, seed=2)
    result = ob.self_diffusion(frames, dt)
    assert list(result) == ["Na", "Cl"]
    for s, d in _d_after_com_removal(d_true, 200).items():
        value, sem = result[s]["D_A2_fs"], result[s]["D_A2_fs_sem"]
        assert 0 < sem < 0.1 * d
        assert abs(value - d) < 4 * sem, (s, value, sem)
        assert result[s]["D_1e-9_m2_s"] == pytest.approx(value * 1e4)
        assert result[s]["n_atoms"] == 200
    assert result["Na"]["D_A2_fs"] > result["Cl"]["D_A2_fs"]
    lo, hi = result["Na"]["fit_window_fs"]
    assert 0 < lo < hi < 800 * dt


def test_self_diffusion_removes_centre_of_mass_drift():
    d_true = {"K": 1.0e-4, "Cl": 1.0e-4}
    still = _random_walk_frames(1500, d_true, 50, 5.0, seed=3)
    drifting = _random_walk_frames(1500, d_true, 50, 5.0, seed=3, drift_A_fs=[2e-3, -1e-3, 5e-4])
    a = ob.self_diffusion(still, 5.0, species=["K"])
    b = ob.self_diffusion(drifting, 5.0, species=["K"])
    assert list(b) == ["K"]
    assert b["K"]["D_A2_fs"] == pytest.approx(a["K"]["D_A2_fs"], rel=1e-8)


# ---------------------------------------------------------------------------------------------------- conductivity


def test_conductivity_unit_conversion_hand_case():
    # slope 6 e^2 A^2/fs, V = 1000 A^3, kB T = 1 eV: sigma = 1e-3 e^2/(A eV fs), worked out in SI units
    temperature = constants.e / constants.k  # K, kB T = 1 eV
    slope_si = 6.0 * constants.e**2 * 1e-20 / 1e-15  # C^2 m^2 / s
    sigma_si = slope_si / (6.0 * 1000e-30 * constants.k * temperature)  # S/m
    assert sigma_si / 100 == pytest.approx(16.02176634, rel=1e-9)
    assert ob.conductivity_S_cm(6.0, 1000.0, temperature) == pytest.approx(sigma_si / 100, rel=1e-5)


def test_einstein_helfand_hand_computed_three_frame_trajectory():
    # The cation steps +1 A along x per fs (crossing the boundary), the anion stays: M_x = 0, 1, 2 e A.
    # MSD(1 fs) = 1, MSD(2 fs) = 4 e^2 A^2, so the fitted slope is 3 e^2 A^2/fs.
    box, temperature = 10.0, 1000.0
    frames = [
        Atoms("NaCl", positions=[[(9.5 + k) % box, 5.0, 5.0], [2.0, 2.0, 2.0]], cell=[box] * 3, pbc=True)
        for k in range(3)
    ]
    result = ob.ionic_conductivity(frames, 1.0, {"Na": 1.0, "Cl": -1.0}, temperature, n_blocks=1,
                                   fit_window=(0.0, 1.0))
    slope_si = 3.0 * constants.e**2 * 1e-20 / 1e-15
    sigma_si = slope_si / (6.0 * box**3 * 1e-30 * constants.k * temperature)
    assert result["sigma_S_cm"] == pytest.approx(sigma_si / 100, rel=1e-5)
    assert np.isnan(result["sigma_S_cm_sem"])
    assert result["volume_A3"] == pytest.approx(1000.0)


def test_einstein_helfand_matches_nernst_einstein_for_uncorrelated_ions():
    d_true = {"Na": 1.2e-4, "Cl": 0.8e-4}
    dt, temperature = 5.0, 1100.0
    frames = _random_walk_frames(16000, d_true, 10, dt, seed=4)
    result = ob.ionic_conductivity(frames, dt, {"Na": 1.0, "Cl": -1.0}, temperature, n_blocks=40)
    # M = sum q r is unchanged by removing the centre-of-mass drift; the self-diffusion of 20 independent
    # walkers is not (about 5 % lower), so the two estimates have slightly different expectations
    expected_eh = ob.conductivity_S_cm(6.0 * 10 * sum(d_true.values()), L_BOX**3, temperature)
    expected_ne = ob.conductivity_S_cm(6.0 * 10 * sum(_d_after_com_removal(d_true, 10).values()), L_BOX**3,
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
    result = ob.ionic_conductivity(frames, 2.0, {"Na": 1.0, "Cl": -1.0}, 1100.0, n_blocks=3)
    assert abs(result["sigma_S_cm"]) < 1e-8 * result["sigma_NE_S_cm"]
    assert result["sigma_NE_S_cm"] > 0


def test_conductivity_requires_every_charge():
    frames = _random_walk_frames(30, {"Na": 1e-4, "Cl": 1e-4}, 2, 1.0, seed=6)
    with pytest.raises(ValueError, match="Cl"):
        ob.ionic_conductivity(frames, 1.0, {"Na": 1.0}, 1100.0, n_blocks=2)


# --------------------------------------------------------------------------------------------------------- density


def test_density_of_rock_salt():
    crystal = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    rho, sem = ob.density([crystal])
    assert 2.16 < rho < 2.17
    assert np.isnan(sem)
    assert ob.density([crystal.repeat(2)])[0] == pytest.approx(rho)


def test_density_block_average_over_npt_frames():
    crystal = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    frames = []
    for scale in [1.00, 1.00, 1.02, 1.02]:
        atoms = crystal.copy()
        atoms.set_cell(crystal.cell * scale, scale_atoms=True)
        frames.append(atoms)
    rho0 = ob.density([crystal])[0]
    blocks = np.array([rho0, rho0 / 1.02**3])
    mean, sem = ob.density(frames, n_blocks=2)
    assert mean == pytest.approx(blocks.mean())
    assert sem == pytest.approx(blocks.std(ddof=1) / np.sqrt(2))


# ------------------------------------------------------------------------------------------------------- stability


def _clean_series(n_steps=1001, dt=10.0, seed=7):
    rng = np.random.default_rng(seed)
    return {
        "time_fs": np.arange(n_steps) * dt,
        "temperature_K": 1100.0 + rng.normal(0, 60.0, n_steps),
        "energy_eV": -300.0 + rng.normal(0, 0.05, n_steps),
        "max_force_eV_A": 3.0 + rng.uniform(-1.0, 1.0, n_steps),
        "min_distance_A": 2.2 + rng.uniform(-0.1, 0.1, n_steps),
    }


def _verdict(series, **kwargs):
    return ob.stability_verdict(**series, n_atoms=64, target_temperature_K=1100.0, **kwargs)


def test_clean_run_is_stable_for_its_full_length():
    verdict = _verdict(_clean_series())
    assert verdict == ob.StabilityVerdict(stable=True, reason="", time_survived_fs=10000.0)


@pytest.mark.parametrize(
    "key, value, index, word",
    [
        ("max_force_eV_A", 45.0, 300, "max force"),
        ("min_distance_A", 0.9, 500, "min distance"),
        ("temperature_K", 2500.0, 700, "temperature"),
        ("energy_eV", np.nan, 400, "non-finite energy"),
        ("max_force_eV_A", 45.0, 0, "max force"),
    ],
)
def test_each_per_step_criterion_fails_at_the_right_time(key, value, index, word):
    series = _clean_series()
    series[key][index] = value
    series[key][index + 5 :] = value  # stays broken afterwards
    verdict = _verdict(series)
    assert not verdict.stable
    assert word in verdict.reason
    assert verdict.reason.count(";") == 0
    expected = series["time_fs"][index - 1] if index > 0 else 0.0
    assert verdict.time_survived_fs == expected


def test_simultaneous_failures_are_all_reported():
    series = _clean_series()
    series["max_force_eV_A"][250] = 80.0
    series["min_distance_A"][250] = 0.5
    series["temperature_K"][600] = 5000.0
    verdict = _verdict(series)
    assert "max force" in verdict.reason and "min distance" in verdict.reason
    assert "temperature" not in verdict.reason
    assert verdict.time_survived_fs == 2490.0


def test_energy_drift_fails_when_the_running_slope_exceeds_the_limit():
    series = _clean_series()
    t = series["time_fs"]
    rate = 0.05  # eV/atom/ps from 5 ps on, five times the default limit
    series["energy_eV"] = series["energy_eV"] + 64 * rate * np.clip(t - 5000.0, 0, None) / 1000.0
    verdict = _verdict(series)
    # independent reference: least-squares slope of E/N over every prefix (t in ps)
    e = series["energy_eV"] / 64
    slopes = np.array([np.polyfit(t[: k + 1] / 1000, e[: k + 1], 1)[0] if k else 0.0 for k in range(len(t))])
    first = np.flatnonzero((t >= 1000.0) & (np.abs(slopes) > 0.01))[0]
    assert t[first] > 5000.0
    assert not verdict.stable and "energy drift" in verdict.reason
    assert verdict.time_survived_fs == t[first - 1]
    # the same series passes under a looser limit
    loose = ob.StabilityThresholds(max_energy_drift_eV_atom_ps=1.0)
    assert _verdict(series, thresholds=loose).stable


def test_rdf_artefact_below_reference_onset_is_detected():
    r = np.linspace(0.025, 7.975, 160)
    g_ref = np.where(r < 2.3, 0.0, 1.0) + 2.0 * np.exp(-((r - 2.8) ** 2) / 0.05) * (r >= 2.3)
    reference = {"r": r, "Na-Cl": g_ref, "sem": {"Na-Cl": np.zeros_like(r)}}
    collapsed = {"r": r, "Na-Cl": g_ref + 0.8 * np.exp(-((r - 1.2) ** 2) / 0.01)}
    shifted = {"r": r, "Na-Cl": np.interp(r + 0.05, r, g_ref)}  # wall 0.05 A softer: no artefact
    series = _clean_series()

    verdict = _verdict(series, rdf_model=collapsed, rdf_ref=reference)
    assert not verdict.stable
    assert "RDF artefact" in verdict.reason and "Na-Cl" in verdict.reason
    assert verdict.time_survived_fs == 10000.0
    assert _verdict(series, rdf_model=shifted, rdf_ref=reference).stable
    # the default margin (0.25 A) tolerates a first peak 0.2 A softer, not 0.4 A
    softer = {"r": r, "Na-Cl": np.interp(r + 0.2, r, g_ref)}
    much_softer = {"r": r, "Na-Cl": np.interp(r + 0.4, r, g_ref)}
    assert _verdict(series, rdf_model=softer, rdf_ref=reference).stable
    assert "RDF artefact" in _verdict(series, rdf_model=much_softer, rdf_ref=reference).reason
