"""The shipped experimental data: correlations reproduce the published check values, a point measurement
applies only at its temperature, and unknown entries are named."""

import math

import pytest

from confselect.experiment import density_at, evaluate, experiment_for, load, transport_at, value_at


def test_density_correlations_reproduce_the_published_melting_point_and_1100_K_values():
    """CRC (from Janz 1988): NaCl 1.556 g/cm^3 at 1075 K, KCl 1.527 g/cm^3 at 1044 K; NSRDS-NBS 15: NaCl
    1.542 +- 0.006 g/cm^3 at 1100 K.  The liquid expands: density falls with temperature."""
    data = load()
    assert density_at(data["NaCl"], 1075.17)[0] == pytest.approx(1.556, abs=1e-3)
    assert density_at(data["KCl"], 1044.0)[0] == pytest.approx(1.527, abs=1e-3)
    assert density_at(data["NaCl"], 1100.0)[0] == pytest.approx(1.542, abs=1e-3)
    assert density_at(data["NaCl"], 1300.0)[0] < density_at(data["NaCl"], 1100.0)[0]
    assert "Janz" in density_at(data["NaCl"], 1100.0)[1]


def test_diffusion_follows_arrhenius_and_cations_are_faster():
    nacl = load()["NaCl"]
    at_1100, at_1300 = transport_at(nacl, 1100.0), transport_at(nacl, 1300.0)
    assert at_1100["D_Na_1e-9_m2_s"]["value"] == pytest.approx(9.05, abs=0.01)
    assert at_1100["D_Cl_1e-9_m2_s"]["value"] == pytest.approx(6.50, abs=0.01)
    assert at_1300["D_Na_1e-9_m2_s"]["value"] > at_1100["D_Na_1e-9_m2_s"]["value"]
    assert at_1100["D_Na_1e-9_m2_s"]["value"] > at_1100["D_Cl_1e-9_m2_s"]["value"]
    assert math.isnan(at_1100["D_Na_1e-9_m2_s"]["uncertainty"])  # none stated in the source: not invented


def test_a_point_measurement_applies_at_its_temperature_only():
    nacl = load()["NaCl"]
    assert transport_at(nacl, 1100.0)["conductivity_S_cm"]["value"] == 3.66
    assert "conductivity_S_cm" not in transport_at(nacl, 1300.0)
    assert math.isnan(evaluate(nacl["conductivity_S_cm"], 1200.0))


def test_extrapolation_beyond_a_stated_range_says_so():
    correlation = {"form": "linear", "a": 2.0, "b": -5e-4, "T_min_K": 1000.0, "T_max_K": 1200.0,
                   "uncertainty_percent": 1.0, "source": "S"}
    inside, outside = value_at(correlation, 1100.0), value_at(correlation, 1500.0)
    assert inside["in_range"] and inside["source"] == "S" and inside["uncertainty"] == pytest.approx(0.0145)
    assert outside["in_range"] is False and "extrapolated beyond 1000-1200 K" in outside["source"]


def test_system_entry_by_name_or_key_and_unknown_key_named():
    assert experiment_for("NaCl", {})["density_g_cm3"]["a"] == 2.1389
    assert experiment_for("salt", {"experiment": "KCl"}) is load()["KCl"]
    assert experiment_for("Cu", {}) is None
    with pytest.raises(ValueError, match="systems.Cu.experiment: no entry 'copper'"):
        experiment_for("Cu", {"experiment": "copper"})
