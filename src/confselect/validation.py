"""Validation runs of a model and of the teacher under one protocol, and their errors (000's validation).

One code path judges and measures every NVT run, model or reference (:func:`judge_nvt`): the stability
verdict over the whole run (:mod:`confselect.stability`), then, if it ran its whole length, structure
(partial RDFs) and transport (:mod:`confselect.transport`) over the frames after the equilibration, with the
fit window of ``validation.transport``.  Every result records the contract the report reads:
``state_point``, ``equilibration_fs``, ``duration_fs``, ``n_atoms``, ``fit_window_ps`` per observable and
the ``thresholds`` it was judged by.
"""

from __future__ import annotations

import math

import numpy as np

from .observables import density, partial_rdfs, rdf_error
from .state_point import describe
from .transport import ionic_conductivity, self_diffusion
from .stability import stability_verdict


def liquid_observables(frames, dt_fs: float, charges_e: dict, temperature_K: float, rdf: dict,
                       transport: dict) -> dict:
    """RDFs, self-diffusion (10^-9 m^2/s) and ionic conductivity (S/cm) of an equilibrated NVT trajectory;
    a system without charges (``charges_e`` empty: a metal) has no ionic conductivity (None)."""
    window, blocks = transport["fit_window_ps"], transport["n_blocks"]
    conductivity = (ionic_conductivity(frames, dt_fs, charges_e, temperature_K, window, n_blocks=blocks)
                    if charges_e else None)
    return {
        "rdf": partial_rdfs(frames, rdf["rmax_A"], rdf["nbins"]),
        "diffusion": self_diffusion(frames, dt_fs, window, n_blocks=blocks),
        "conductivity": conductivity,
        "n_frames": len(frames),
        "dt_fs": dt_fs,
    }


def npt_density(frames, n_blocks: int = 5) -> dict:
    """Mean density (g/cm^3) and its block-average standard error over NPT frames."""
    mean, sem = density(frames, n_blocks=n_blocks)
    return {"density_g_cm3": mean, "density_g_cm3_sem": sem, "n_frames": len(frames)}


def validation_start(frames, md: dict, supercell) -> "Atoms":
    """Frame ``md["start_frame"]`` of the held-out trajectory, repeated ``supercell`` times along the cell
    vectors (000 validates on 400 atoms, trains on 100): where the reference NPT runs start."""
    start = frames[md.get("start_frame", -1)].copy()
    start.calc = None
    return start.repeat(tuple(int(k) for k in supercell))


def equilibrated(frames, equilibration_fs: float) -> list:
    """The frames at or after ``equilibration_fs`` (by their ``time_fs``), the part an average may use."""
    return [f for f in frames if f.info["time_fs"] >= equilibration_fs - 1e-9]


def series_from_frames(frames) -> dict:
    """Per-sample series of a teacher run (LAMMPS frames: info ``time_fs``, ``temperature_K``,
    ``conserved_eV``, forces), with the keys :func:`judge_nvt` reads."""
    from .dynamics import minimum_distance

    return {
        "time_fs": np.array([f.info["time_fs"] for f in frames], dtype=float),
        "temperature_K": np.array([f.info["temperature_K"] for f in frames], dtype=float),
        "conserved_eV": np.array([f.info["conserved_eV"] for f in frames], dtype=float),
        "max_force_eV_A": np.array([np.linalg.norm(f.get_forces(), axis=1).max() for f in frames]),
        "min_distance_A": np.array([minimum_distance(f) for f in frames]),
        "volume_A3": np.array([f.get_volume() for f in frames]),
    }


def judge_nvt(frames, series: dict, start, md: dict, transport: dict, rdf: dict, limits, charges_e: dict,
              stop_reason: str = "", reference_rdf: dict | None = None, observables: bool = True) -> dict:
    """Stability verdict of an NVT run (``md``: equilibration_fs then duration_fs) and, if it ran through,
    its observables after the equilibration; the contract fields of ``md.json`` / ``nvt.json``.

    ``series``: per-sample arrays (:data:`confselect.dynamics.SERIES_KEYS` or :func:`series_from_frames`);
    ``reference_rdf``: the teacher's RDF for the artefact criterion (None for the teacher itself);
    ``observables``: False for a stability-only run (the stress run).
    """
    total_fs = md["equilibration_fs"] + md["duration_fs"]
    contract = {
        "state_point": describe(start),
        "equilibration_fs": float(md["equilibration_fs"]),
        "duration_fs": float(md["duration_fs"]),
        "n_atoms": len(start),
        "protocol": {k: float(md[k]) for k in ("timestep_fs", "sample_interval_fs", "thermostat_damping_fs")},
        "thresholds": limits.as_dict(),
    }
    if len(series["time_fs"]) == 0:  # the run broke before its first sample (e.g. the first force call failed)
        return {"stable": False, "reason": stop_reason or "no sample recorded", "time_survived_fs": 0.0,
                "stability_figures": {}, **contract, "mean_temperature_K": math.nan,
                **({"observables": {"rdf": None}} if observables else {})}
    averaged = equilibrated(frames, md["equilibration_fs"])
    wanted = observables or reference_rdf is not None
    model_rdf = partial_rdfs(averaged, rdf["rmax_A"], rdf["nbins"]) if wanted and len(averaged) > 1 else None
    verdict = stability_verdict(
        series["time_fs"], series["temperature_K"], series["conserved_eV"], series["max_force_eV_A"],
        series["min_distance_A"], len(start), md["temperature_K"], limits,
        rdf_model=model_rdf if reference_rdf is not None else None, rdf_ref=reference_rdf,
    )
    completed = not stop_reason and series["time_fs"][-1] >= total_fs - 1e-6
    result = {
        "stable": bool(verdict.stable and completed),
        "reason": verdict.reason or stop_reason,
        "time_survived_fs": float(verdict.time_survived_fs),
        "stability_figures": verdict.figures,
        **contract,
        "mean_temperature_K": float(np.nanmean(series["temperature_K"][series["time_fs"] >= md["equilibration_fs"]]))
        if completed else float(np.nanmean(series["temperature_K"])),
    }
    if observables:
        measured = (liquid_observables(averaged, md["sample_interval_fs"], charges_e, md["temperature_K"], rdf,
                                       transport) if completed else {"rdf": model_rdf})
        result["observables"] = measured
        result["fit_window_ps"] = {"diffusion": list(transport["fit_window_ps"]),
                                   "conductivity": list(transport["fit_window_ps"])}
    return result


def ml_nvt(calculator, start, md: dict, limits, seed: int, label: str = "ML-MD", simulate=None):
    """The NVT run (:func:`confselect.dynamics.run_md`, Nose-Hoover chain) of ``calculator`` from ``start``:
    equilibration and averaged part in one run.  ``simulate`` replaces ``run_md`` (same signature; tests)."""
    if simulate is None:
        from .dynamics import run_md as simulate
    stride = max(1, round(md["sample_interval_fs"] / md["timestep_fs"]))
    steps = int(round((md["equilibration_fs"] + md["duration_fs"]) / md["timestep_fs"]))
    return simulate(
        start.copy(), calculator, "nvt", steps=steps, timestep_fs=md["timestep_fs"], temperature_K=md["temperature_K"],
        thermostat_damping_fs=md["thermostat_damping_fs"], sample_every=stride, seed=seed,
        max_force_eV_A=limits.max_force_eV_A, min_distance_A=limits.min_distance_A, progress_label=label,
    )


def ml_nvt_validation(calculator, start, md: dict, transport: dict, limits, rdf: dict, charges_e: dict,
                      reference: dict, seed: int, simulate=None) -> dict:
    """The NVT validation run of ``calculator`` from the state point ``start``, judged and measured by
    :func:`judge_nvt` against ``reference`` (the teacher's ``nvt.json``)."""
    run = ml_nvt(calculator, start, md, limits, seed, simulate=simulate)
    result = judge_nvt(run.frames, run.series, start, md, transport, rdf, limits, charges_e, run.stop_reason,
                       reference_rdf=reference["observables"]["rdf"])
    measured = result["observables"]
    result["steps_per_s"] = run.steps_per_s
    result["versus_reference"] = compare_to_reference(measured, reference["observables"]) if measured["rdf"] else {}
    return result


def ml_stress_run(calculator, start, md: dict, stress: dict, limits, seed: int, simulate=None) -> dict:
    """The stress run: NVT at the stress temperature for ``stress["duration_fs"]`` (no equilibration is
    discarded: it is judged whole), stability only."""
    protocol = {**md, "temperature_K": float(start.info["temperature_K"]), "equilibration_fs": 0.0,
                "duration_fs": float(stress["duration_fs"])}
    run = ml_nvt(calculator, start, protocol, limits, seed, label="ML-MD stress", simulate=simulate)
    result = judge_nvt(run.frames, run.series, start, protocol, {}, {}, limits, {}, run.stop_reason,
                       observables=False)
    result["steps_per_s"] = run.steps_per_s
    return result


def ml_density_scan(calculator, starts: dict, density_settings: dict, limits, seed: int, progress: bool = True,
                    simulate=None) -> dict:
    """NPT runs (:func:`confselect.dynamics.run_md`, isotropic MTK) of ``calculator`` at each temperature,
    each from the state point at that temperature (``starts``: temperature key -> Atoms); the calculator
    (and its loaded model) serves every run.

    Every run starts with fresh Maxwell-Boltzmann velocities (seed ``seed + k`` for the k-th temperature)
    and is judged like the NVT run (:func:`~confselect.stability.stability_verdict` on the MTK conserved
    quantity), with the volume criterion.  Only a run stable for its whole length gets a density, averaged
    after ``equilibration_fs``.  A blow-up is recorded, never raised.  ``simulate`` replaces ``run_md``.
    """
    if simulate is None:
        from .dynamics import run_md as simulate
    d = density_settings
    steps = int(round(d["duration_fs"] / d["timestep_fs"]))
    stride = max(1, int(round(d["sample_interval_fs"] / d["timestep_fs"])))
    out = {}
    for k, temperature in enumerate(float(t) for t in d["temperatures_K"]):
        start = starts[f"{temperature:g}"]
        run = simulate(
            start.copy(), calculator, "npt", steps=steps, timestep_fs=d["timestep_fs"], temperature_K=temperature,
            thermostat_damping_fs=d["thermostat_damping_fs"], pressure_bar=d["pressure_bar"],
            barostat_damping_fs=d["barostat_damping_fs"], sample_every=stride, seed=seed + k,
            max_force_eV_A=limits.max_force_eV_A, min_distance_A=limits.min_distance_A,
            progress_label=f"ML-NPT {temperature:g} K" if progress else None,
        )
        s = run.series
        verdict = stability_verdict(s["time_fs"], s["temperature_K"], s["conserved_eV"], s["max_force_eV_A"],
                                    s["min_distance_A"], len(start), temperature, limits, volume_A3=s["volume_A3"])
        completed = not run.stop_reason and run.steps == steps
        entry = {
            "temperature_K": temperature,
            "stable": bool(completed and verdict.stable),
            "reason": verdict.reason or run.stop_reason,
            "time_survived_fs": float(verdict.time_survived_fs),
            "stability_figures": verdict.figures,
            "start_density_g_cm3": describe(start)["density_g_cm3"],
            "mean_temperature_K": float(np.nanmean(s["temperature_K"])),
            "mean_pressure_bar": float(np.nanmean(s["pressure_bar"])),
            "steps_per_s": run.steps_per_s,
        }
        if entry["stable"]:
            entry.update(npt_density(equilibrated(run.frames, d["equilibration_fs"])))
        out[f"{temperature:g}"] = entry
    return out


def compare_to_reference(model: dict, reference: dict, against: str = "teacher") -> dict:
    """Flat model-vs-reference numbers for the summary (NaN where the model produced no observable); every
    error column names its reference: ``_vs_teacher`` (the classical teacher's run), ``_vs_labeller`` (the
    labeller's own MD, :mod:`confselect.labeller_md`)."""
    out = {}
    ref_rdf = reference["rdf"]
    pairs = [k for k in ref_rdf if k not in ("r", "sem")]
    for pair in pairs:
        out[f"rdf_error_{pair}_vs_{against}"] = (
            rdf_error(ref_rdf["r"], model["rdf"][pair], ref_rdf[pair]) if model.get("rdf") else math.nan
        )
    for species, ref in reference["diffusion"].items():
        value = model.get("diffusion", {}).get(species, {})
        d, d_sem = value.get("D_1e-9_m2_s", math.nan), value.get("D_1e-9_m2_s_sem", math.nan)
        out[f"D_{species}_1e-9_m2_s"] = d
        out[f"D_{species}_1e-9_m2_s_sem"] = d_sem
        out[f"D_{species}_rel_error_vs_{against}"] = (d - ref["D_1e-9_m2_s"]) / ref["D_1e-9_m2_s"]
    if not reference.get("conductivity"):  # no charges, no ionic conductivity
        return out
    sigma = model.get("conductivity") or {}
    ref_sigma = reference["conductivity"]["sigma_S_cm"]
    out["sigma_S_cm"] = sigma.get("sigma_S_cm", math.nan)
    out["sigma_S_cm_sem"] = sigma.get("sigma_S_cm_sem", math.nan)
    out[f"sigma_rel_error_vs_{against}"] = (out["sigma_S_cm"] - ref_sigma) / ref_sigma
    return out


def density_errors(model: dict, reference: dict) -> dict:
    """Per temperature: model density, its error and the relative error against the teacher's."""
    out = {}
    for temperature, ref in sorted(reference.items(), key=lambda kv: float(kv[0])):
        value = model.get(temperature, {})
        rho = _number(value.get("density_g_cm3")) if value.get("stable", True) else math.nan
        out[f"density_{float(temperature):g}K_g_cm3"] = rho
        out[f"density_{float(temperature):g}K_g_cm3_sem"] = _number(value.get("density_g_cm3_sem"))
        out[f"density_{float(temperature):g}K_rel_error_vs_teacher"] = (rho - ref["density_g_cm3"]) / ref["density_g_cm3"]
    return out


def _number(value) -> float:
    """A JSON number as float; null (NaN written by :func:`nan_to_none`) or absent as NaN."""
    return math.nan if value is None else float(value)


def nan_to_none(value):
    """JSON has no NaN: write it as null."""
    if isinstance(value, dict):
        return {k: nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [nan_to_none(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
