"""Physics checks of the structural observables (block averages, RDFs, density)."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from confselect import observables as ob

L_BOX = 20.0  # A


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
