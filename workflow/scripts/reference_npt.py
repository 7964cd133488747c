"""The teacher's NPT runs (LAMMPS) at each validation temperature: reference densities (000 Fig. 3)."""
from confselect.classical import run_classical_npt
from confselect.jobs import log_to, write_json
from confselect.pool import read_frames
from confselect.progress import Progress
from confselect.validation import reference_density_scan, validation_start

log_to(snakemake)
p = snakemake.params
d = p.density
start = validation_start(read_frames(snakemake.input[0]), p.md, p.supercell)


def run_npt(temperature_K):
    frames = []
    progress = Progress(f"reference NPT {temperature_K:g} K", int(d["reference_duration_fs"] // d["sample_interval_fs"]))
    run_classical_npt(
        p.system, start, temperature_K, d["pressure_bar"], d["timestep_fs"], d["reference_duration_fs"],
        d["thermostat_damping_fs"], d["barostat_damping_fs"], d["sample_interval_fs"], seed=0,
        on_frame=frames.append, progress=lambda k, n, f: progress(k),
    )
    return frames


scan = reference_density_scan(run_npt, d["temperatures_K"], d)
write_json(snakemake.output[0], {"n_atoms": len(start), "pressure_bar": d["pressure_bar"], "runs": scan})
for key, run in scan.items():
    print(f"reference NPT {key} K: {run['density_g_cm3']:.4f} +- {run['density_g_cm3_sem']:.4f} g/cm^3", flush=True)
