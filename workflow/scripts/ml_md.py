"""NVT ML-MD with one trained model: stability verdict, time survived, and (if it ran through) RDFs,
self-diffusion and ionic conductivity with their errors against the reference run."""
from confselect.jobs import log_to, read_json, write_json
from confselect.md_engine import MDEngine
from confselect.observables import StabilityThresholds, partial_rdfs, stability_verdict
from confselect.pool import read_frames
from confselect.validation import compare_to_reference, liquid_observables, nan_to_none, validation_start

log_to(snakemake)
md, limits, rdf = snakemake.params.md, snakemake.params.stability, snakemake.params.rdf
start = validation_start(read_frames(snakemake.input.frames), md, snakemake.params.supercell)
reference = read_json(snakemake.input.reference)
engine = MDEngine(snakemake.input.model, start, cutoff_A=snakemake.params.cutoff_A)
stride = max(1, round(md["sample_interval_fs"] / md["timestep_fs"]))
run = engine.run(
    "nvt", steps=int(md["duration_fs"] // md["timestep_fs"]), timestep_fs=md["timestep_fs"],
    temperature_K=md["temperature_K"], thermostat_damping_fs=md["thermostat_damping_fs"], sample_every=stride,
    seed=int(snakemake.wildcards.seed), max_force_eV_A=limits["max_force_eV_A"],
    min_distance_A=limits["min_distance_A"], progress_label="ML-MD",
)
frames, series, stop = run.frames, run.series, run.stop_reason
model_rdf = partial_rdfs(frames, rdf["rmax_A"], rdf["nbins"]) if len(frames) > 1 else None
verdict = stability_verdict(
    series["time_fs"], series["temperature_K"], series["conserved_eV"], series["max_force_eV_A"],
    series["min_distance_A"], len(start), md["temperature_K"], StabilityThresholds(**limits),
    rdf_model=model_rdf, rdf_ref=reference["rdf"],
)
completed = not stop and series["time_fs"][-1] >= md["duration_fs"] - 1e-6
stable = bool(verdict.stable and completed)
# Transport from a run that blew up would be meaningless: observables only for runs that went through.
observables = (
    liquid_observables(frames, md["sample_interval_fs"], snakemake.params.charges_e, md["temperature_K"],
                       rdf["rmax_A"], rdf["nbins"])
    if completed else {"rdf": model_rdf}
)
result = {
    "stable": stable,
    "reason": verdict.reason or stop,
    "time_survived_fs": float(verdict.time_survived_fs),
    "duration_fs": md["duration_fs"],
    "mean_temperature_K": float(series["temperature_K"].mean()),
    "steps_per_s": run.steps_per_s,
    "observables": observables,
    "versus_reference": compare_to_reference(observables, reference) if observables["rdf"] else {},
}
write_json(snakemake.output[0], nan_to_none(result))
print(f"ML-MD: {'stable' if stable else 'failed'} after {verdict.time_survived_fs:.0f} fs {result['reason']}", flush=True)
