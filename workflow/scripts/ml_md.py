"""ML-MD validation of one trained model in one process with one loaded calculator, every run from the
reference's state point at its temperature: the NVT run (stability verdict, time survived, and if it ran
through RDFs, self-diffusion and ionic conductivity against the reference run) and the stress run at the
pool's highest temperature (md.json), and the NPT runs at every validation temperature (stability and
density; npt.json).  Each file records the wall time of its runs (``wall_s``) and the device and threads.
Device (``validation.device``) and threads (the rule's, ``validation.threads``) are machine settings, read
from the config rather than the rule's params, so that moving the job plans no rerun."""
import time

import torch

from confselect.calculator import SchNetCalculator
from confselect.devices import resolve_device
from confselect.jobs import log_to, read_json, write_json
from confselect.pool import read_frames
from confselect.stability import StabilityThresholds
from confselect.state_point import state_point_of, temperature_key
from confselect.validation import ml_density_scan, ml_nvt_validation, ml_stress_run, nan_to_none

log_to(snakemake)
# CUDA asked for but absent: stop before anything is read
device = resolve_device(snakemake.config["validation"]["device"], "validation.device")
torch.set_num_threads(snakemake.threads)
p = snakemake.params
seed, limits = int(snakemake.wildcards.seed), StabilityThresholds.from_config(p.stability)
points = read_frames(snakemake.input.state_points)
calculator = SchNetCalculator(snakemake.input.model, cutoff_A=p.cutoff_A, device=device)
resources = {"device": device, "threads": torch.get_num_threads(), "repulsion": p.repulsion}
print(f"ML-MD on {device}, {resources['threads']} thread(s)", flush=True)

tick = time.perf_counter()
start = state_point_of(points, p.md["temperature_K"])
nvt = ml_nvt_validation(calculator, start, p.md, p.transport, limits, p.rdf, p.charges_e,
                        read_json(snakemake.input.reference), seed)
print(f"ML-MD: {'stable' if nvt['stable'] else 'failed'} after {nvt['time_survived_fs']:.0f} fs {nvt['reason']}",
      flush=True)
if p.stress["duration_fs"] > 0:
    nvt["stress"] = ml_stress_run(calculator, state_point_of(points, p.stress_temperature_K), p.md, p.stress,
                                  limits, seed + 100)
    stress = nvt["stress"]
    print(f"ML-MD stress {p.stress_temperature_K:g} K: {'stable' if stress['stable'] else stress['reason']}", flush=True)
write_json(snakemake.output.md, nan_to_none({**nvt, "wall_s": time.perf_counter() - tick, **resources}))

tick = time.perf_counter()
starts = {temperature_key(t): state_point_of(points, t) for t in p.density["temperatures_K"]}
scan = ml_density_scan(calculator, starts, p.density, limits, seed=seed)
write_json(snakemake.output.npt, nan_to_none({"n_atoms": len(start), "backend": calculator.backend, "runs": scan,
                                             "thresholds": limits.as_dict(), "wall_s": time.perf_counter() - tick,
                                             **resources}))
for key, entry in scan.items():
    rho = f"{entry['density_g_cm3']:.4f} g/cm^3" if entry["stable"] else entry["reason"]
    print(f"ML-NPT {key} K: {rho}", flush=True)
