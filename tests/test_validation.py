"""Validation runs: the start structure, the NVT run, the NPT density scans of models and reference, density
errors.

The scans are driven by a stand-in for ``run_md`` that replays prescribed trajectories (volume,
temperature, conserved energy), so each verdict and average has a known right answer; the calculator and
the MD itself are tested in test_calculator.py.
"""

import math

import numpy as np
import pytest
from ase.build import bulk

from confselect.dynamics import SERIES_KEYS, MDResult
from confselect.observables import AMU_PER_A3_IN_G_PER_CM3, StabilityThresholds
from confselect.validation import (
    density_errors,
    equilibrated,
    liquid_observables,
    ml_density_scan,
    ml_nvt_validation,
    reference_density_scan,
    validation_start,
)

SETTINGS = {
    "timestep_fs": 2.0, "duration_fs": 2000.0, "equilibration_fs": 1000.0, "sample_interval_fs": 20.0,
    "thermostat_damping_fs": 100.0, "barostat_damping_fs": 1000.0, "pressure_bar": 1.0, "max_volume_change": 0.5,
}  # fmt: skip
LIMITS = StabilityThresholds(max_force_eV_A=25.0, min_distance_A=1.6, max_temperature_deviation_K=1000.0,
                             max_energy_drift_eV_atom_ps=0.05)


def crystal():
    return bulk("NaCl", "rocksalt", a=5.64, cubic=True)


def rho_of(atoms, volume):
    return atoms.get_masses().sum() / volume * AMU_PER_A3_IN_G_PER_CM3


class ReplayMD:
    """Stands in for ``run_md``: replays ``volume(t)`` at the target temperature and records the calls."""

    def __init__(self, atoms, volumes, stop=None):
        self.atoms, self.volumes, self.stop, self.calls, self.states = atoms, volumes, stop or {}, [], []

    def __call__(self, atoms, calculator, ensemble, steps, timestep_fs, temperature_K, sample_every, seed, **kwargs):
        self.states.append(atoms.get_volume())
        self.calls.append((ensemble, steps, temperature_K, seed, kwargs.get("pressure_bar"), calculator))
        done = self.stop.get(temperature_K, steps)
        times = np.arange(0, done + 1, sample_every) * timestep_fs
        volume = self.volumes[temperature_K](times)
        frames = []
        for t, v in zip(times, volume):
            frame = self.atoms.copy()
            frame.set_cell(self.atoms.cell * (v / self.atoms.get_volume()) ** (1 / 3), scale_atoms=True)
            frame.info["time_fs"] = float(t)
            frames.append(frame)
        n = len(times)
        series = {key: np.zeros(n) for key in SERIES_KEYS}
        series.update(time_fs=times, temperature_K=np.full(n, temperature_K), volume_A3=volume,
                      max_force_eV_A=np.full(n, 2.0), min_distance_A=np.full(n, 2.2), pressure_bar=np.full(n, 5.0))
        return MDResult(frames=frames, series=series, stop_reason="atoms too close" if done < steps else "",
                        steps=done, wall_time_s=1.0, cpu_time_s=1.0, neighbour_list_builds=1, ensemble=ensemble,
                        timestep_fs=timestep_fs)


def test_validation_start_is_the_chosen_frame_repeated():
    frames = [crystal(), crystal().repeat((1, 1, 2))]
    frames[1].info["tag"] = "last"
    start = validation_start(frames, {"start_frame": -1}, [2, 1, 3])
    assert len(start) == 8 * 2 * 6 and start.info["tag"] == "last"
    assert start.get_volume() == pytest.approx(frames[1].get_volume() * 6)
    assert validation_start(frames, {"start_frame": 0}, [1, 1, 1]).get_volume() == pytest.approx(5.64**3)


def test_equilibrated_keeps_frames_from_the_cut_on():
    frames = [crystal() for _ in range(5)]
    for t, f in zip([0.0, 500.0, 1000.0, 1500.0, 2000.0], frames):
        f.info["time_fs"] = t
    assert [f.info["time_fs"] for f in equilibrated(frames, 1000.0)] == [1000.0, 1500.0, 2000.0]


def test_ml_density_scan_averages_after_equilibration_and_judges_every_temperature():
    atoms = crystal()
    v0 = atoms.get_volume()
    volumes = {
        1100.0: lambda t: np.where(t < 1000.0, v0, 1.1 * v0),  # expands, then holds: density of 1.1 v0
        1300.0: lambda t: v0 * (1.0 + t / 1000.0),  # swells without bound: fails at +50 %
        1500.0: lambda t: np.full_like(t, 1.05 * v0),  # steady, but the run is stopped early
    }
    replay = ReplayMD(atoms, volumes, stop={1500.0: 300})
    calculator = object()
    scan = ml_density_scan(calculator, atoms, [1100, 1300, 1500], SETTINGS, LIMITS, seed=7, progress=False,
                           simulate=replay)

    assert list(scan) == ["1100", "1300", "1500"]
    assert [c[0] for c in replay.calls] == ["npt"] * 3 and [c[1] for c in replay.calls] == [1000] * 3
    assert [c[3] for c in replay.calls] == [7, 8, 9]  # fresh velocities per temperature
    assert all(c[5] is calculator for c in replay.calls)  # one calculator (one loaded model) for every run
    assert replay.states == [pytest.approx(v0)] * 3  # every temperature starts from the same structure

    good = scan["1100"]
    assert good["stable"] and good["reason"] == ""
    assert good["density_g_cm3"] == pytest.approx(rho_of(atoms, 1.1 * v0))
    assert good["n_frames"] == 51  # t = 1000 ... 2000 fs every 20 fs
    assert good["time_survived_fs"] == 2000.0 and good["mean_pressure_bar"] == 5.0

    swelling = scan["1300"]
    assert not swelling["stable"] and "density_g_cm3" not in swelling
    assert "volume changed by 52 %" in swelling["reason"] and "t = 520 fs" in swelling["reason"]
    assert swelling["time_survived_fs"] == 500.0

    stopped = scan["1500"]
    assert not stopped["stable"] and "density_g_cm3" not in stopped


def test_reference_density_scan_uses_equilibrated_frames_only():
    atoms = crystal()
    v0 = atoms.get_volume()

    def run_npt(temperature_K):
        frames = []
        for t, scale in ((0.0, 1.0), (500.0, 1.0), (1000.0, 1.2), (1500.0, 1.2)):
            frame = atoms.copy()
            frame.set_cell(atoms.cell * (scale * temperature_K / 1000.0) ** (1 / 3), scale_atoms=True)
            frame.info["time_fs"] = t
            frames.append(frame)
        return frames

    scan = reference_density_scan(run_npt, [1000.0, 1500.0], {"equilibration_fs": 1000.0})
    assert scan["1000"]["density_g_cm3"] == pytest.approx(rho_of(atoms, 1.2 * v0))
    assert scan["1500"]["density_g_cm3"] == pytest.approx(rho_of(atoms, 1.8 * v0))
    assert scan["1500"]["n_frames"] == 2 and scan["1500"]["temperature_K"] == 1500.0


def test_density_errors_skip_failed_runs_and_json_nulls():
    reference = {"1100": {"density_g_cm3": 1.5}, "1300": {"density_g_cm3": 1.4}}
    model = {
        "1100": {"stable": True, "density_g_cm3": 1.56, "density_g_cm3_sem": None},
        "1300": {"stable": False, "reason": "atoms too close"},
    }
    errors = density_errors(model, reference)
    assert errors["density_1100K_rel_error"] == pytest.approx(0.04)
    assert math.isnan(errors["density_1100K_g_cm3_sem"])
    assert math.isnan(errors["density_1300K_g_cm3"]) and math.isnan(errors["density_1300K_rel_error"])


class RandomWalkMD(ReplayMD):
    """Stands in for ``run_md`` in NVT: the atoms of a 2x2x2 salt crystal take Gaussian steps every sample."""

    def __call__(self, atoms, calculator, ensemble, steps, timestep_fs, temperature_K, sample_every, seed, **kwargs):
        rng = np.random.default_rng(0)  # the same trajectory whatever the seed: model and reference agree
        result = super().__call__(atoms, calculator, ensemble, steps, timestep_fs, temperature_K, sample_every,
                                  seed, **kwargs)
        displacement = np.zeros((len(self.atoms), 3))
        for frame in result.frames:
            frame.positions += displacement
            displacement += rng.normal(0.0, 0.05, displacement.shape)
        return result


NVT = {"temperature_K": 1300.0, "timestep_fs": 2.0, "duration_fs": 2000.0, "thermostat_damping_fs": 100.0,
       "sample_interval_fs": 20.0}
RDF = {"rmax_A": 5.0, "nbins": 50}
CHARGES = {"Na": 1.0, "Cl": -1.0}


def test_nvt_run_through_gives_transport_equal_to_a_reference_on_the_same_trajectory():
    atoms = crystal().repeat(2)
    replay = RandomWalkMD(atoms, {1300.0: lambda t: np.full_like(t, atoms.get_volume())})
    frames = replay(atoms, None, "nvt", 1000, 2.0, 1300.0, 10, 0).frames
    reference = liquid_observables(frames, 20.0, CHARGES, 1300.0, RDF["rmax_A"], RDF["nbins"])
    result = ml_nvt_validation("calc", atoms, NVT, LIMITS, RDF, CHARGES, reference, seed=3, simulate=replay)
    assert replay.calls[-1][:4] == ("nvt", 1000, 1300.0, 3) and replay.calls[-1][5] == "calc"
    assert result["stable"] and result["reason"] == "" and result["time_survived_fs"] == 2000.0
    versus = result["versus_reference"]
    assert versus["D_Na_rel_error"] == 0.0 and versus["D_Cl_rel_error"] == 0.0 and versus["sigma_rel_error"] == 0.0
    assert versus["rdf_error_Na-Cl"] == 0.0
    assert result["observables"]["diffusion"]["Na"]["D_1e-9_m2_s"] > 0


def test_nvt_run_stopped_early_fails_and_reports_no_transport():
    atoms = crystal().repeat(2)
    replay = RandomWalkMD(atoms, {1300.0: lambda t: np.full_like(t, atoms.get_volume())}, stop={1300.0: 300})
    reference = liquid_observables(replay(atoms, None, "nvt", 1000, 2.0, 1300.0, 10, 0).frames, 20.0, CHARGES,
                                   1300.0, RDF["rmax_A"], RDF["nbins"])
    result = ml_nvt_validation("calc", atoms, NVT, LIMITS, RDF, CHARGES, reference, seed=3, simulate=replay)
    assert not result["stable"] and result["reason"] == "atoms too close"
    assert "diffusion" not in result["observables"] and result["observables"]["rdf"] is not None
    assert math.isnan(result["versus_reference"]["D_Na_rel_error"])
