"""Observables of a liquid MD run and their errors against a reference run (000's validation).

One code path serves the ML models and the reference (the classical teacher): structure (partial RDFs),
transport (self-diffusion per species, ionic conductivity), and density from NPT runs; each with a
block-average uncertainty (:mod:`confselect.observables`).
"""

from __future__ import annotations

import math

import numpy as np

from .observables import density, ionic_conductivity, partial_rdfs, rdf_error, self_diffusion


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
        rho = value.get("density_g_cm3", math.nan) if value.get("stable", True) else math.nan
        out[f"density_{float(temperature):g}K_g_cm3"] = rho
        out[f"density_{float(temperature):g}K_g_cm3_sem"] = value.get("density_g_cm3_sem", math.nan)
        out[f"density_{float(temperature):g}K_rel_error"] = (rho - ref["density_g_cm3"]) / ref["density_g_cm3"]
    return out


def nan_to_none(value):
    """JSON has no NaN: write it as null."""
    if isinstance(value, dict):
        return {k: nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [nan_to_none(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
