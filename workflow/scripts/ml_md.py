"""ML-MD validation of one trained model in one process with one loaded calculator: the NVT run (stability
verdict, time survived, and if it ran through RDFs, self-diffusion and ionic conductivity against the
reference run; md.json) and the NPT runs at every validation temperature (stability and density; npt.json).
Each file records the wall time of its runs (``wall_s``) and the device and threads they used."""
import time

import torch

from confselect.calculator import SchNetCalculator
from confselect.devices import resolve_device
from confselect.jobs import log_to, read_json, write_json
from confselect.observables import StabilityThresholds
from confselect.pool import read_frames
from confselect.validation import ml_density_scan, ml_nvt_validation, nan_to_none, validation_start

log_to(snakemake)
p = snakemake.params
seed, limits = int(snakemake.wildcards.seed), StabilityThresholds(**p.stability)
device = resolve_device(p.device, "validation.device")  # CUDA asked for but absent: stop before any MD
start = validation_start(read_frames(snakemake.input.frames), p.md, p.supercell)
calculator = SchNetCalculator(snakemake.input.model, cutoff_A=p.cutoff_A, device=device)

resources = {"device": device, "threads": torch.get_num_threads()}
tick = time.perf_counter()
nvt = ml_nvt_validation(calculator, start, p.md, limits, p.rdf, p.charges_e, read_json(snakemake.input.reference), seed)
write_json(snakemake.output.md, nan_to_none({**nvt, "wall_s": time.perf_counter() - tick, **resources}))
print(f"ML-MD: {'stable' if nvt['stable'] else 'failed'} after {nvt['time_survived_fs']:.0f} fs {nvt['reason']}",
      flush=True)

tick = time.perf_counter()
scan = ml_density_scan(calculator, start, p.density["temperatures_K"], p.density, limits, seed=seed)
write_json(snakemake.output.npt, nan_to_none({"n_atoms": len(start), "backend": calculator.backend, "runs": scan,
                                             "wall_s": time.perf_counter() - tick, **resources}))
for key, entry in scan.items():
    rho = f"{entry['density_g_cm3']:.4f} g/cm^3" if entry["stable"] else entry["reason"]
    print(f"ML-NPT {key} K: {rho}", flush=True)
