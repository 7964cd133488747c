"""The teacher's NVT run (LAMMPS) at the validation conditions: reference RDFs, diffusion, conductivity."""
from confselect.classical import run_classical_nvt
from confselect.jobs import log_to, write_json
from confselect.pool import read_frames
from confselect.progress import Progress
from confselect.validation import liquid_observables, validation_start

log_to(snakemake)
md, ref, rdf = snakemake.params.md, snakemake.params.reference, snakemake.params.rdf
start = validation_start(read_frames(snakemake.input[0]), md, snakemake.params.supercell)
frames = []
progress = Progress("reference NVT", int(ref["duration_fs"] // md["sample_interval_fs"]))
run_classical_nvt(
    snakemake.params.system, start, md["temperature_K"], md["timestep_fs"], ref["duration_fs"],
    md["thermostat_damping_fs"], md["sample_interval_fs"], seed=0, on_frame=frames.append,
    progress=lambda k, n, f: progress(k),
)
observables = liquid_observables(
    frames, md["sample_interval_fs"], snakemake.params.system["charges_e"], md["temperature_K"],
    rdf["rmax_A"], rdf["nbins"],
)
write_json(snakemake.output[0], {**observables, "temperature_K": md["temperature_K"], "volume_A3": start.get_volume()})
