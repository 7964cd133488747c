"""NPT ML-MD with one trained model at each validation temperature: stability and density (000 Fig. 3)."""
from confselect.jobs import log_to, write_json
from confselect.md_engine import MDEngine
from confselect.observables import StabilityThresholds
from confselect.pool import read_frames
from confselect.validation import ml_density_scan, nan_to_none, validation_start

log_to(snakemake)
p = snakemake.params
start = validation_start(read_frames(snakemake.input.frames), p.md, p.supercell)
engine = MDEngine(snakemake.input.model, start, cutoff_A=p.cutoff_A)
scan = ml_density_scan(engine, p.density["temperatures_K"], p.density, StabilityThresholds(**p.stability),
                       seed=int(snakemake.wildcards.seed))
write_json(snakemake.output[0], nan_to_none({"n_atoms": len(start), "backend": engine.backend, "runs": scan}))
for key, run in scan.items():
    rho = f"{run['density_g_cm3']:.4f} g/cm^3" if run["stable"] else run["reason"]
    print(f"ML-NPT {key} K: {rho}", flush=True)
