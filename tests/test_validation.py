"""Validation runs: the start structure, the NVT run judged and measured under one protocol for model and
reference, the NPT density scans, density errors.

The scans are driven by a stand-in for ``run_md`` that replays prescribed trajectories (volume,
temperature, conserved energy), so each verdict and average has a known right answer; the calculator and
the MD itself are tested in test_calculator.py.
"""

import math

import numpy as np
import pytest
from ase.build import bulk

from confselect.dynamics import SERIES_KEYS, MDResult
from ase.calculators.singlepoint import SinglePointCalculator

from confselect.config import SCHEMA, section_defaults
from confselect.observables import AMU_PER_A3_IN_G_PER_CM3
from confselect.stability import StabilityThresholds
from confselect.validation import (
    density_errors,
    equilibrated,
    judge_nvt,
    ml_density_scan,
    ml_nvt_validation,
    ml_stress_run,
    series_from_frames,
    validation_start,
)

SETTINGS = {
    "temperatures_K": [1100.0, 1300.0, 1500.0], "timestep_fs": 2.0, "duration_fs": 2000.0, "equilibration_fs": 1000.0,
    "sample_interval_fs": 20.0, "thermostat_damping_fs": 100.0, "barostat_damping_fs": 1000.0, "pressure_bar": 1.0,
}  # fmt: skip
LIMITS = StabilityThresholds.from_config(section_defaults(SCHEMA, "validation", "stability"))


def crystal():
    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    atoms.info.update(temperature_K=1300.0, density_source="test")
    return atoms


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


def test_ml_density_scan_starts_each_temperature_at_its_state_point_and_judges_it():
    atoms = crystal()
    v0 = atoms.get_volume()
    starts = {}
    for key, scale in (("1100", 1.0), ("1300", 1.1), ("1500", 1.2)):
        start = atoms.copy()
        start.set_cell(atoms.cell * scale ** (1 / 3), scale_atoms=True)
        starts[key] = start
    volumes = {
        1100.0: lambda t: np.where(t < 1000.0, v0, 1.1 * v0),  # expands, then holds: density of 1.1 v0
        1300.0: lambda t: 1.1 * v0 * (1.0 + t / 900.0),  # swells without bound: its 2 ps mean is +111 %
        1500.0: lambda t: np.full_like(t, 1.2 * v0),  # steady, but the run is stopped early
    }
    replay = ReplayMD(atoms, volumes, stop={1500.0: 300})
    calculator = object()
    scan = ml_density_scan(calculator, starts, SETTINGS, LIMITS, seed=7, progress=False, simulate=replay)

    assert list(scan) == ["1100", "1300", "1500"]
    assert [c[0] for c in replay.calls] == ["npt"] * 3 and [c[1] for c in replay.calls] == [1000] * 3
    assert [c[3] for c in replay.calls] == [7, 8, 9]  # fresh velocities per temperature
    assert all(c[5] is calculator for c in replay.calls)  # one calculator (one loaded model) for every run
    assert replay.states == [pytest.approx(v0), pytest.approx(1.1 * v0), pytest.approx(1.2 * v0)]

    good = scan["1100"]
    assert good["stable"] and good["reason"] == ""
    assert good["density_g_cm3"] == pytest.approx(rho_of(atoms, 1.1 * v0))
    assert good["n_frames"] == 51  # t = 1000 ... 2000 fs every 20 fs
    assert good["time_survived_fs"] == 2000.0 and good["mean_pressure_bar"] == 5.0
    assert good["start_density_g_cm3"] == pytest.approx(rho_of(atoms, v0))

    swelling = scan["1300"]
    assert not swelling["stable"] and "density_g_cm3" not in swelling
    # judged on the running mean over validation.stability.volume_window_fs (2 ps: here the whole run)
    assert "volume ran away: mean over the last 2000 fs is 111 %" in swelling["reason"]
    assert "t = 2000 fs" in swelling["reason"] and swelling["time_survived_fs"] == 1980.0

    stopped = scan["1500"]
    assert not stopped["stable"] and "density_g_cm3" not in stopped


def test_density_errors_skip_failed_runs_and_json_nulls():
    reference = {"1100": {"density_g_cm3": 1.5}, "1300": {"density_g_cm3": 1.4}}
    model = {
        "1100": {"stable": True, "density_g_cm3": 1.56, "density_g_cm3_sem": None},
        "1300": {"stable": False, "reason": "atoms too close"},
    }
    errors = density_errors(model, reference)
    assert errors["density_1100K_rel_error_vs_teacher"] == pytest.approx(0.04)
    assert math.isnan(errors["density_1100K_g_cm3_sem"])
    assert math.isnan(errors["density_1300K_g_cm3"]) and math.isnan(errors["density_1300K_rel_error_vs_teacher"])


class RandomWalkMD(ReplayMD):
    """Stands in for ``run_md`` in NVT: the atoms of a 2x2x2 salt crystal take Gaussian steps every sample."""

    def __call__(self, atoms, calculator, ensemble, steps, timestep_fs, temperature_K, sample_every, seed, **kwargs):
        rng = np.random.default_rng(0)  # the same trajectory whatever the seed: model and reference agree
        result = super().__call__(atoms, calculator, ensemble, steps, timestep_fs, temperature_K, sample_every,
                                  seed, **kwargs)
        displacement = np.zeros((len(self.atoms), 3))
        for frame in result.frames:
            frame.positions += displacement
            displacement += rng.normal(0.0, 0.03, displacement.shape)
        return result


NVT = {"temperature_K": 1300.0, "timestep_fs": 2.0, "equilibration_fs": 400.0, "duration_fs": 2000.0,
       "thermostat_damping_fs": 100.0, "sample_interval_fs": 20.0}
TRANSPORT = {"fit_window_ps": [0.04, 0.16], "n_blocks": 5}
RDF = {"rmax_A": 5.0, "nbins": 50}
CHARGES = {"Na": 1.0, "Cl": -1.0}


def as_teacher_frames(frames):
    """The replayed frames as the LAMMPS teacher writes them: info temperature and conserved energy, forces."""
    out = []
    for frame in frames:
        f = frame.copy()
        f.info.update(temperature_K=1300.0, conserved_eV=-100.0)
        f.calc = SinglePointCalculator(f, energy=-100.0, forces=np.full((len(f), 3), 0.5))
        out.append(f)
    return out


def test_model_and_reference_paths_give_identical_transport_from_identical_trajectories():
    """The teacher's frames go through judge_nvt as the reference does; the same trajectory replayed as a
    model's run goes through ml_nvt_validation: D, sigma and g(r) agree exactly, with the same window."""
    atoms = crystal().repeat(2)
    replay = RandomWalkMD(atoms, {1300.0: lambda t: np.full_like(t, atoms.get_volume())})
    teacher = as_teacher_frames(replay(atoms, None, "nvt", 1200, 2.0, 1300.0, 10, 0).frames)
    reference = judge_nvt(teacher, series_from_frames(teacher), atoms, NVT, TRANSPORT, RDF, LIMITS, CHARGES)
    assert reference["stable"], reference["reason"]
    result = ml_nvt_validation("calc", atoms, NVT, TRANSPORT, LIMITS, RDF, CHARGES, reference, seed=3,
                               simulate=replay)
    assert replay.calls[-1][:4] == ("nvt", 1200, 1300.0, 3) and replay.calls[-1][5] == "calc"
    assert result["stable"] and result["reason"] == "" and result["time_survived_fs"] == 2400.0
    versus = result["versus_reference"]
    for key in ("D_Na_rel_error_vs_teacher", "D_Cl_rel_error_vs_teacher", "sigma_rel_error_vs_teacher",
                "rdf_error_Na-Cl_vs_teacher"):
        assert versus[key] == 0.0, key
    assert result["fit_window_ps"] == reference["fit_window_ps"] == {"diffusion": [0.04, 0.16],
                                                                      "conductivity": [0.04, 0.16]}
    assert result["observables"]["diffusion"]["Na"]["fit_window_ps"] == [0.04, 0.16]
    assert result["observables"]["diffusion"]["Na"]["D_1e-9_m2_s"] > 0


def test_the_contract_records_state_point_protocol_and_thresholds_and_drops_the_equilibration():
    atoms = crystal().repeat(2)
    replay = RandomWalkMD(atoms, {1300.0: lambda t: np.full_like(t, atoms.get_volume())})
    teacher = as_teacher_frames(replay(atoms, None, "nvt", 1200, 2.0, 1300.0, 10, 0).frames)
    reference = judge_nvt(teacher, series_from_frames(teacher), atoms, NVT, TRANSPORT, RDF, LIMITS, CHARGES)
    result = ml_nvt_validation("calc", atoms, NVT, TRANSPORT, LIMITS, RDF, CHARGES, reference, seed=3,
                               simulate=replay)
    assert result["state_point"] == {"temperature_K": 1300.0, "density_g_cm3": pytest.approx(rho_of(atoms, atoms.get_volume())),
                                     "density_source": "test"}
    assert result["equilibration_fs"] == 400.0 and result["duration_fs"] == 2000.0
    assert result["n_atoms"] == len(atoms) == 64
    assert result["thresholds"] == LIMITS.as_dict()
    # averages use t = 400 ... 2400 fs only: 101 samples of the 121
    assert result["observables"]["n_frames"] == reference["observables"]["n_frames"] == 101


def test_nvt_run_stopped_early_fails_and_reports_no_transport():
    atoms = crystal().repeat(2)
    replay = RandomWalkMD(atoms, {1300.0: lambda t: np.full_like(t, atoms.get_volume())}, stop={1300.0: 600})
    teacher = as_teacher_frames(RandomWalkMD(atoms, {1300.0: lambda t: np.full_like(t, atoms.get_volume())})(
        atoms, None, "nvt", 1200, 2.0, 1300.0, 10, 0).frames)
    reference = judge_nvt(teacher, series_from_frames(teacher), atoms, NVT, TRANSPORT, RDF, LIMITS, CHARGES)
    result = ml_nvt_validation("calc", atoms, NVT, TRANSPORT, LIMITS, RDF, CHARGES, reference, seed=3,
                               simulate=replay)
    assert not result["stable"] and result["reason"] == "atoms too close"
    assert "diffusion" not in result["observables"] and result["observables"]["rdf"] is not None
    assert math.isnan(result["versus_reference"]["D_Na_rel_error_vs_teacher"])


def test_stress_run_is_judged_whole_at_its_own_temperature():
    atoms = crystal().repeat(2)
    atoms.info["temperature_K"] = 1700.0
    replay = RandomWalkMD(atoms, {1700.0: lambda t: np.full_like(t, atoms.get_volume())})
    result = ml_stress_run("calc", atoms, NVT, {"duration_fs": 1000.0}, LIMITS, seed=9, simulate=replay)
    assert replay.calls[-1][:4] == ("nvt", 500, 1700.0, 9)
    assert result["stable"] and result["equilibration_fs"] == 0.0 and result["duration_fs"] == 1000.0
    assert result["state_point"]["temperature_K"] == 1700.0 and "observables" not in result


def test_a_run_that_breaks_before_its_first_sample_is_a_failure_not_an_error():
    """A calculator that fails on the start configuration (a labeller's single point that does not converge,
    a model that raises): the run records why, and its verdict is a failure at t = 0 with the contract."""
    from ase.calculators.calculator import Calculator

    from confselect.dynamics import run_md

    class Broken(Calculator):
        implemented_properties = ["energy", "forces"]

        def calculate(self, atoms=None, properties=("energy",), system_changes=()):
            raise RuntimeError("SCF did not converge")

    atoms = crystal().repeat(2)
    run = run_md(atoms.copy(), Broken(), "nvt", steps=10, timestep_fs=2.0, temperature_K=1300.0, sample_every=2, seed=1)
    assert run.stop_reason == "integration failed: SCF did not converge" and len(run.series["time_fs"]) == 0
    result = judge_nvt(run.frames, run.series, atoms, NVT, TRANSPORT, RDF, LIMITS, CHARGES, run.stop_reason)
    assert not result["stable"] and result["time_survived_fs"] == 0.0
    assert result["reason"] == run.stop_reason and result["n_atoms"] == len(atoms)
    assert result["observables"] == {"rdf": None} and result["thresholds"] == LIMITS.as_dict()
