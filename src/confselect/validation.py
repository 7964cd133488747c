"""Observables of a liquid MD run and their errors against a reference run (000's validation).

One code path serves the ML models and the reference (the classical teacher): structure (partial RDFs),
transport (self-diffusion per species, ionic conductivity), and density from NPT runs; each with a
block-average uncertainty (:mod:`confselect.observables`).
"""

from __future__ import annotations

import math

import numpy as np

from .observables import density, ionic_conductivity, partial_rdfs, rdf_error, self_diffusion, stability_verdict


def liquid_observables(frames, dt_fs: float, charges_e: dict, temperature_K: float, rmax_A: float, nbins: int,
                       n_blocks: int = 5) -> dict:
    """RDFs, self-diffusion (10^-9 m^2/s) and ionic conductivity (S/cm) of an NVT trajectory."""
    return {
        "rdf": partial_rdfs(frames, rmax_A, nbins),
        "diffusion": self_diffusion(frames, dt_fs, n_blocks=n_blocks),
        "conductivity": ionic_conductivity(frames, dt_fs, charges_e, temperature_K, n_blocks=n_blocks),
        "n_frames": len(frames),
        "dt_fs": dt_fs,
    }


def npt_density(frames, n_blocks: int = 5) -> dict:
    """Mean density (g/cm^3) and its block-average standard error over NPT frames."""
    mean, sem = density(frames, n_blocks=n_blocks)
    return {"density_g_cm3": mean, "density_g_cm3_sem": sem, "n_frames": len(frames)}


def validation_start(frames, md: dict, supercell) -> "Atoms":
    """The start of every validation run: frame ``md["start_frame"]`` of the held-out trajectory, repeated
    ``supercell`` times along the cell vectors (000 validates on 400 atoms, trains on 100)."""
    start = frames[md.get("start_frame", -1)].copy()
    start.calc = None
    return start.repeat(tuple(int(k) for k in supercell))


def equilibrated(frames, equilibration_fs: float) -> list:
    """The frames at or after ``equilibration_fs`` (by their ``time_fs``), the part an average may use."""
    return [f for f in frames if f.info["time_fs"] >= equilibration_fs - 1e-9]


def reference_density_scan(run_npt, temperatures_K, density_settings: dict) -> dict:
    """Densities of the reference at each temperature: ``run_npt(T) -> frames`` (time_fs in their info).

    Returns ``{"<T>": {"temperature_K", "density_g_cm3", "density_g_cm3_sem", "n_frames"}}``, keyed by
    ``f"{T:g}"``.
    """
    out = {}
    for temperature in temperatures_K:
        frames = equilibrated(run_npt(float(temperature)), density_settings["equilibration_fs"])
        out[f"{float(temperature):g}"] = {"temperature_K": float(temperature), **npt_density(frames)}
    return out


def ml_nvt_validation(calculator, start, md: dict, limits, rdf: dict, charges_e: dict, reference: dict,
                      seed: int, simulate=None) -> dict:
    """The NVT validation run (:func:`confselect.dynamics.run_md`, Nose-Hoover chain) of ``calculator`` from
    ``start``: stability verdict and time survived, and, if it ran its whole length, RDFs, self-diffusion
    and ionic conductivity with their errors against ``reference`` (the teacher's ``nvt.json``).

    ``md``: ``validation.md``; ``limits``: :class:`~confselect.observables.StabilityThresholds`; ``rdf``:
    ``validation.rdf``.  Transport from a run that blew up would be meaningless, so a failed run keeps only
    its RDF (if it has two frames).  ``simulate`` replaces ``run_md`` (same signature; for tests).
    """
    if simulate is None:
        from .dynamics import run_md as simulate
    stride = max(1, round(md["sample_interval_fs"] / md["timestep_fs"]))
    run = simulate(
        start.copy(), calculator, "nvt", steps=int(md["duration_fs"] // md["timestep_fs"]),
        timestep_fs=md["timestep_fs"], temperature_K=md["temperature_K"],
        thermostat_damping_fs=md["thermostat_damping_fs"], sample_every=stride, seed=seed,
        max_force_eV_A=limits.max_force_eV_A, min_distance_A=limits.min_distance_A, progress_label="ML-MD",
    )
    frames, series, stop = run.frames, run.series, run.stop_reason
    model_rdf = partial_rdfs(frames, rdf["rmax_A"], rdf["nbins"]) if len(frames) > 1 else None
    verdict = stability_verdict(
        series["time_fs"], series["temperature_K"], series["conserved_eV"], series["max_force_eV_A"],
        series["min_distance_A"], len(start), md["temperature_K"], limits,
        rdf_model=model_rdf, rdf_ref=reference["rdf"],
    )
    completed = not stop and series["time_fs"][-1] >= md["duration_fs"] - 1e-6
    observables = (
        liquid_observables(frames, md["sample_interval_fs"], charges_e, md["temperature_K"], rdf["rmax_A"],
                           rdf["nbins"])
        if completed else {"rdf": model_rdf}
    )
    return {
        "stable": bool(verdict.stable and completed),
        "reason": verdict.reason or stop,
        "time_survived_fs": float(verdict.time_survived_fs),
        "duration_fs": md["duration_fs"],
        "mean_temperature_K": float(series["temperature_K"].mean()),
        "steps_per_s": run.steps_per_s,
        "observables": observables,
        "versus_reference": compare_to_reference(observables, reference) if observables["rdf"] else {},
    }


def ml_density_scan(calculator, start, temperatures_K, density_settings: dict, limits, seed: int,
                    progress: bool = True, simulate=None) -> dict:
    """NPT runs (:func:`confselect.dynamics.run_md`, isotropic MTK) of ``calculator`` from ``start`` at each
    temperature; the calculator (and its loaded model) serves every run.

    Every run starts from a copy of ``start`` with fresh Maxwell-Boltzmann velocities (seed ``seed + k``
    for the k-th temperature) and is judged like the NVT validation run
    (:func:`~confselect.observables.stability_verdict` on the conserved quantity of the MTK integrator),
    plus a volume criterion: ``|V / V_start - 1| > max_volume_change`` fails (a melt that boils off or
    collapses). Only a run that is stable for its whole length gets a density, averaged over the frames
    after ``equilibration_fs``. A blow-up is recorded, never raised. ``simulate`` replaces ``run_md``
    (same signature; for tests).

    Returns ``{"<T>": {"temperature_K", "stable", "reason", "time_survived_fs", "mean_temperature_K",
    "mean_pressure_bar", "steps_per_s", and if stable "density_g_cm3", "density_g_cm3_sem", "n_frames"}}``.
    """
    if simulate is None:
        from .dynamics import run_md as simulate
    d = density_settings
    v0 = start.get_volume()
    steps = int(round(d["duration_fs"] / d["timestep_fs"]))
    stride = max(1, int(round(d["sample_interval_fs"] / d["timestep_fs"])))
    out = {}
    for k, temperature in enumerate(float(t) for t in temperatures_K):
        run = simulate(
            start.copy(), calculator, "npt", steps=steps, timestep_fs=d["timestep_fs"], temperature_K=temperature,
            thermostat_damping_fs=d["thermostat_damping_fs"], pressure_bar=d["pressure_bar"],
            barostat_damping_fs=d["barostat_damping_fs"], sample_every=stride, seed=seed + k,
            max_force_eV_A=limits.max_force_eV_A, min_distance_A=limits.min_distance_A,
            progress_label=f"ML-NPT {temperature:g} K" if progress else None,
        )
        s = run.series
        verdict = stability_verdict(s["time_fs"], s["temperature_K"], s["conserved_eV"], s["max_force_eV_A"],
                                    s["min_distance_A"], len(start), temperature, limits)
        reason, survived = verdict.reason or run.stop_reason, verdict.time_survived_fs
        swell = np.abs(s["volume_A3"] / v0 - 1.0)
        beyond = np.flatnonzero(~(swell <= d["max_volume_change"]))
        if len(beyond) and (not reason or s["time_fs"][beyond[0]] <= survived):
            t_fail = s["time_fs"][beyond[0]]
            reason = (f"volume changed by {100 * swell[beyond[0]]:.0f} % (limit {100 * d['max_volume_change']:.0f} %) "
                      f"at t = {t_fail:g} fs")
            survived = float(s["time_fs"][max(beyond[0] - 1, 0)] - s["time_fs"][0])
        completed = not run.stop_reason and run.steps == steps
        entry = {
            "temperature_K": temperature,
            "stable": bool(completed and not reason),
            "reason": reason,
            "time_survived_fs": float(survived),
            "mean_temperature_K": float(np.nanmean(s["temperature_K"])),
            "mean_pressure_bar": float(np.nanmean(s["pressure_bar"])),
            "steps_per_s": run.steps_per_s,
        }
        if entry["stable"]:
            entry.update(npt_density(equilibrated(run.frames, d["equilibration_fs"])))
        out[f"{temperature:g}"] = entry
    return out


def compare_to_reference(model: dict, reference: dict) -> dict:
    """Flat model-vs-reference numbers for the summary (NaN where the model produced no observable)."""
    out = {}
    ref_rdf = reference["rdf"]
    pairs = [k for k in ref_rdf if k not in ("r", "sem")]
    for pair in pairs:
        out[f"rdf_error_{pair}"] = (
            rdf_error(ref_rdf["r"], model["rdf"][pair], ref_rdf[pair]) if model.get("rdf") else math.nan
        )
    for species, ref in reference["diffusion"].items():
        value = model.get("diffusion", {}).get(species, {})
        d, d_sem = value.get("D_1e-9_m2_s", math.nan), value.get("D_1e-9_m2_s_sem", math.nan)
        out[f"D_{species}_1e-9_m2_s"] = d
        out[f"D_{species}_1e-9_m2_s_sem"] = d_sem
        out[f"D_{species}_rel_error"] = (d - ref["D_1e-9_m2_s"]) / ref["D_1e-9_m2_s"]
    sigma = model.get("conductivity", {})
    ref_sigma = reference["conductivity"]["sigma_S_cm"]
    out["sigma_S_cm"] = sigma.get("sigma_S_cm", math.nan)
    out["sigma_S_cm_sem"] = sigma.get("sigma_S_cm_sem", math.nan)
    out["sigma_rel_error"] = (out["sigma_S_cm"] - ref_sigma) / ref_sigma
    return out


def density_errors(model: dict, reference: dict) -> dict:
    """Per temperature: model density, its error and the relative error against the reference."""
    out = {}
    for temperature, ref in sorted(reference.items(), key=lambda kv: float(kv[0])):
        value = model.get(temperature, {})
        rho = _number(value.get("density_g_cm3")) if value.get("stable", True) else math.nan
        out[f"density_{float(temperature):g}K_g_cm3"] = rho
        out[f"density_{float(temperature):g}K_g_cm3_sem"] = _number(value.get("density_g_cm3_sem"))
        out[f"density_{float(temperature):g}K_rel_error"] = (rho - ref["density_g_cm3"]) / ref["density_g_cm3"]
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
