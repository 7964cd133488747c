"""NVT ML-MD with one trained model: stability verdict, time survived, RDFs and their error vs the reference."""
import numpy as np

from confselect.jobs import log_to, read_json, write_json
from confselect.mlmd import run_nvt, spk_calculator
from confselect.observables import StabilityThresholds, partial_rdfs, rdf_error, stability_verdict
from confselect.pool import read_frames

log_to(snakemake)
md, limits, rdf = snakemake.params.md, snakemake.params.stability, snakemake.params.rdf
start = read_frames(snakemake.input.frames)[md.get("start_frame", -1)]
reference = read_json(snakemake.input.reference)["rdf"]
calc = spk_calculator(snakemake.input.model, snakemake.params.cutoff_A)
frames, series, stop = run_nvt(
    start, calc, md["temperature_K"], md["timestep_fs"], md["duration_fs"], md["thermostat_damping_fs"],
    md["sample_interval_fs"], seed=int(snakemake.wildcards.seed), max_force_eV_A=limits["max_force_eV_A"],
    min_distance_A=limits["min_distance_A"],
)
model_rdf = partial_rdfs(frames, rdf["rmax_A"], rdf["nbins"]) if len(frames) > 1 else None
thresholds = StabilityThresholds(**limits)
verdict = stability_verdict(
    series["time_fs"], series["temperature_K"], series["energy_eV"], series["max_force_eV_A"],
    series["min_distance_A"], len(start), md["temperature_K"], thresholds,
    rdf_model=model_rdf, rdf_ref=reference,
)
completed = not stop and series["time_fs"][-1] >= md["duration_fs"] - 1e-6
stable = bool(verdict.stable and completed)
reason = verdict.reason or stop
pairs = [k for k in reference if k not in ("r", "sem")]
result = {
    "stable": stable,
    "reason": reason,
    "time_survived_fs": float(verdict.time_survived_fs),
    "duration_fs": md["duration_fs"],
    "rdf_error": {p: rdf_error(reference["r"], model_rdf[p], reference[p]) for p in pairs} if model_rdf else {},
    "rdf": model_rdf or {},
    "mean_temperature_K": float(np.mean(series["temperature_K"])),
}
write_json(snakemake.output[0], result)
print(f"ML-MD: {'stable' if stable else 'failed'} after {verdict.time_survived_fs:.0f} fs {reason}", flush=True)
