"""The stability criteria: each one rejects what it is meant to and for that reason, a clean teacher run
passes them all, and their only defaults are the schema's."""

import dataclasses

import numpy as np
import pytest
import yaml
from ase.calculators.singlepoint import SinglePointCalculator

from confselect.structures import random_melt
from confselect.classical import run_classical_npt, run_classical_nvt
from confselect.config import SCHEMA, section_defaults
from confselect.observables import partial_rdfs
from confselect.stability import StabilityThresholds, StabilityVerdict, drift_slopes, stability_verdict
from confselect.state_point import mass_density, scaled_to_density
from confselect.validation import series_from_frames

from conftest import REPO as ROOT

DEFAULTS = StabilityThresholds.from_config(section_defaults(SCHEMA, "validation", "stability"))


def _clean_series(n_steps=1001, dt=10.0, seed=7):
    rng = np.random.default_rng(seed)
    return {
        "time_fs": np.arange(n_steps) * dt,
        "temperature_K": 1100.0 + rng.normal(0, 60.0, n_steps),
        "conserved_eV": -300.0 + rng.normal(0, 0.005, n_steps),
        "max_force_eV_A": 3.0 + rng.uniform(-1.0, 1.0, n_steps),
        "min_distance_A": 2.2 + rng.uniform(-0.1, 0.1, n_steps),
    }


def _verdict(series, thresholds=DEFAULTS, **kwargs):
    return stability_verdict(**series, n_atoms=64, target_temperature_K=1100.0, thresholds=thresholds, **kwargs)


# ------------------------------------------------------------------------------------------------ one home


def test_the_thresholds_have_no_defaults_of_their_own():
    with pytest.raises(TypeError):
        StabilityThresholds()
    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(StabilityThresholds))
    with pytest.raises(ValueError, match="missing keys"):
        StabilityThresholds.from_config({"max_force_eV_A": 10.0})
    with pytest.raises(ValueError, match="unknown keys"):
        StabilityThresholds.from_config({**DEFAULTS.as_dict(), "max_energy_drift_eV_atom_ps": 0.05})


def test_no_config_sets_stability_thresholds_of_its_own():
    """The shipped configs leave validation.stability to the schema, so the report's thresholds are the
    schema's defaults."""
    for path in sorted((ROOT / "config").glob("*.yaml")) + sorted((ROOT / "tests" / "configs").glob("*.yaml")):
        if path.name == "schema.yaml":
            continue
        config = yaml.safe_load(path.read_text()) or {}
        assert "stability" not in (config.get("validation") or {}), path


# ----------------------------------------------------------------------------------------------- criteria


def test_clean_run_is_stable_for_its_full_length():
    verdict = _verdict(_clean_series())
    assert verdict.stable and verdict.reason == "" and verdict.time_survived_fs == 10000.0
    assert verdict.figures["max_force_eV_A"] <= 4.0 and verdict.figures["min_distance_A"] >= 2.1
    assert abs(verdict.figures["conserved_drift_meV_atom_ps"]) < 0.05


@pytest.mark.parametrize(
    "key, value, index, word",
    [
        ("max_force_eV_A", 45.0, 300, "max force"),
        ("min_distance_A", 0.9, 500, "min distance"),
        ("conserved_eV", np.nan, 400, "non-finite conserved energy"),
        ("max_force_eV_A", 45.0, 0, "max force"),
    ],
)
def test_each_per_sample_criterion_fails_at_the_right_time(key, value, index, word):
    series = _clean_series()
    series[key][index:] = value
    verdict = _verdict(series)
    assert not verdict.stable
    assert word in verdict.reason
    assert verdict.reason.count(";") == 0
    expected = series["time_fs"][index - 1] if index > 0 else 0.0
    assert verdict.time_survived_fs == expected


def test_an_instantaneous_temperature_spike_passes_a_sustained_offset_fails():
    """A single 900 K excursion is a fluctuation; 300 K too hot for 3 ps is a thermostat that lost control.
    The running mean over 2 ps crosses the 150 K limit when half the window is 300 K hot: 1 ps in."""
    spike = _clean_series()
    spike["temperature_K"][500] += 900.0
    assert _verdict(spike).stable
    hot = _clean_series()
    hot["temperature_K"][400:700] += 300.0
    verdict = _verdict(hot)
    assert not verdict.stable and "temperature drifted" in verdict.reason
    assert 4900.0 <= verdict.time_survived_fs <= 5100.0


def test_conserved_drift_fails_when_the_running_slope_exceeds_the_limit():
    series = _clean_series()
    t = series["time_fs"]
    rate = 5.0  # meV/atom/ps from 5 ps on, five times the default limit
    series["conserved_eV"] = series["conserved_eV"] + 64 * rate * 1e-3 * np.clip(t - 5000.0, 0, None) / 1000.0
    verdict = _verdict(series)
    # independent reference: least-squares slope of E/N over every prefix (t in ps, meV)
    e = series["conserved_eV"] / 64 * 1000.0
    slopes = np.array([np.polyfit(t[: k + 1] / 1000, e[: k + 1], 1)[0] if k else 0.0 for k in range(len(t))])
    np.testing.assert_allclose(drift_slopes(t, series["conserved_eV"] / 64)[1:], slopes[1:], rtol=1e-6, atol=1e-9)
    first = np.flatnonzero((t >= DEFAULTS.drift_window_fs) & (np.abs(slopes) > DEFAULTS.max_conserved_drift_meV_atom_ps))[0]
    assert t[first] > 5000.0
    assert not verdict.stable and "conserved-energy drift" in verdict.reason
    assert verdict.time_survived_fs == t[first - 1]
    loose = dataclasses.replace(DEFAULTS, max_conserved_drift_meV_atom_ps=10.0)
    assert _verdict(series, thresholds=loose).stable


def test_npt_volume_runaway_fails_and_the_barostat_oscillation_does_not():
    series = _clean_series()
    t = series["time_fs"]
    volume = np.full(len(t), 1000.0)
    volume[600:] = np.linspace(1000.0, 2000.0, len(volume) - 600)  # the melt boils off
    verdict = _verdict(series, volume_A3=volume)
    assert not verdict.stable and "volume ran away" in verdict.reason
    # independent reference: the mean over the last window of samples, against the start
    samples = int(round(DEFAULTS.volume_window_fs / np.median(np.diff(t)))) + 1
    means = np.array([volume[k + 1 - samples:k + 1].mean() if k + 1 >= samples else np.nan for k in range(len(t))])
    with np.errstate(invalid="ignore"):
        crossing = np.flatnonzero(np.abs(means / volume[0] - 1.0) > DEFAULTS.max_volume_change)[0]
    assert verdict.time_survived_fs == t[crossing - 1]
    assert _verdict(series, volume_A3=np.full(len(volume), 1000.0)).stable
    # an MTK barostat's oscillation of +-35 % (1 ps period) around the start volume is no runaway
    oscillating = 1000.0 * (1.0 + 0.35 * np.sin(2 * np.pi * t / 1000.0))
    calm = _verdict(series, volume_A3=oscillating)
    assert calm.stable and calm.figures["max_volume_change"] < 0.05
def test_rdf_artefact_below_reference_onset_is_detected():
    r = np.linspace(0.025, 7.975, 160)
    g_ref = np.where(r < 2.3, 0.0, 1.0) + 2.0 * np.exp(-((r - 2.8) ** 2) / 0.05) * (r >= 2.3)
    reference = {"r": r, "Na-Cl": g_ref, "sem": {"Na-Cl": np.zeros_like(r)}}
    collapsed = {"r": r, "Na-Cl": g_ref + 0.8 * np.exp(-((r - 1.2) ** 2) / 0.01)}
    series = _clean_series()
    verdict = _verdict(series, rdf_model=collapsed, rdf_ref=reference)
    assert not verdict.stable
    assert "RDF artefact" in verdict.reason and "Na-Cl" in verdict.reason
    assert verdict.time_survived_fs == 10000.0
    # the default margin (0.25 A) tolerates a first peak 0.2 A softer, not 0.4 A
    softer = {"r": r, "Na-Cl": np.interp(r + 0.2, r, g_ref)}
    much_softer = {"r": r, "Na-Cl": np.interp(r + 0.4, r, g_ref)}
    assert _verdict(series, rdf_model=softer, rdf_ref=reference).stable
    assert "RDF artefact" in _verdict(series, rdf_model=much_softer, rdf_ref=reference).reason


# ------------------------------------------------------------------------------------- the real teacher


@pytest.fixture(scope="module")
def teacher_run():
    """6 ps NVT of 64 ions of the teacher (LAMMPS) at its own 1300 K, 1 bar density, sampled every 20 fs."""
    system = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["systems"]["NaCl"]
    melt = random_melt({"Na": 32, "Cl": 32}, 1.5, 5, 2.2)
    npt = []
    run_classical_npt(system, melt, 1300.0, 1.0, 2.0, 4000.0, 100.0, 1000.0, 20.0, seed=0, on_frame=npt.append)
    rho = float(np.mean([mass_density(f) for f in npt[100:]]))
    frames = []
    run_classical_nvt(system, scaled_to_density(npt[-1], rho), 1300.0, 2.0, 6000.0, 100.0, 20.0, seed=1,
                      on_frame=frames.append)
    return frames


def _judge(frames, series, reference_rdf=None):
    rdf = partial_rdfs(frames, 5.5, 55)
    return stability_verdict(series["time_fs"], series["temperature_K"], series["conserved_eV"],
                             series["max_force_eV_A"], series["min_distance_A"], len(frames[0]), 1300.0, DEFAULTS,
                             rdf_model=rdf, rdf_ref=reference_rdf or rdf)


def test_a_clean_teacher_run_passes_every_criterion_with_margin(teacher_run):
    series = series_from_frames(teacher_run)
    verdict = _judge(teacher_run, series)
    assert verdict.stable, verdict.reason
    f = verdict.figures
    assert f["max_force_eV_A"] < 0.6 * DEFAULTS.max_force_eV_A
    assert f["min_distance_A"] > DEFAULTS.min_distance_A + 0.2
    assert abs(f["conserved_drift_meV_atom_ps"]) < 0.05 * DEFAULTS.max_conserved_drift_meV_atom_ps
    assert f["max_temperature_drift_K"] < DEFAULTS.max_temperature_drift_K


def test_injected_faults_in_the_teacher_run_are_each_rejected_for_their_reason(teacher_run):
    clean = series_from_frames(teacher_run)
    reference_rdf = partial_rdfs(teacher_run, 5.5, 55)
    t = clean["time_fs"]

    drift = {**clean, "conserved_eV": clean["conserved_eV"] + 64 * 3e-3 * (t - t[0]) / 1000.0}  # 3 meV/atom/ps
    assert "conserved-energy drift" in _judge(teacher_run, drift).reason

    hot = dict(clean)
    hot["temperature_K"] = np.where(t > 3000.0, clean["temperature_K"] + 400.0, clean["temperature_K"])
    assert "temperature drifted" in _judge(teacher_run, hot).reason

    close = []
    for k, frame in enumerate(teacher_run):
        f = frame.copy()
        if k >= 150:  # from 3 ps on, ion 1 sits 1.2 A from ion 0
            f.positions[1] = f.positions[0] + [1.2, 0.0, 0.0]
        f.calc = SinglePointCalculator(f, energy=frame.get_potential_energy(), forces=frame.get_forces())
        close.append(f)
    verdict = _judge(close, series_from_frames(close), reference_rdf)
    assert "min distance" in verdict.reason and "RDF artefact" in verdict.reason
    assert verdict.time_survived_fs == pytest.approx(3000.0 - t[0], abs=20.0)

    assert isinstance(_judge(teacher_run, clean, reference_rdf), StabilityVerdict)
