"""The teacher's NVT run (LAMMPS) at the validation state point, under the models' protocol: reference RDFs,
diffusion, conductivity, its own stability verdict and its mean pressure (near the NPT target it was set
to)."""
from confselect.classical import run_classical_nvt
from confselect.jobs import log_to, write_json
from confselect.pool import read_frames
from confselect.progress import Progress
from confselect.stability import StabilityThresholds
from confselect.state_point import pressure_mean_and_sem, state_point_of
from confselect.validation import equilibrated, judge_nvt, nan_to_none, series_from_frames

log_to(snakemake)
system = snakemake.config["systems"][snakemake.wildcards.system]  # runnable: potential files by path
p = snakemake.params
md = p.md
start = state_point_of(read_frames(snakemake.input.state_points), md["temperature_K"])
frames = []
total_fs = md["equilibration_fs"] + md["duration_fs"]
progress = Progress("reference NVT", int(total_fs // md["sample_interval_fs"]))
run_classical_nvt(
    system, start, md["temperature_K"], md["timestep_fs"], total_fs, md["thermostat_damping_fs"],
    md["sample_interval_fs"], seed=0, on_frame=frames.append, progress=lambda k, n, f: progress(k),
)
# LAMMPS reports the first frame after one sample interval; the teacher's series starts there.
result = judge_nvt(frames, series_from_frames(frames), start, md, p.transport, p.rdf,
                   StabilityThresholds.from_config(p.stability), system.get("charges_e") or {})
pressure, pressure_sem = pressure_mean_and_sem(equilibrated(frames, md["equilibration_fs"]))
write_json(snakemake.output[0], nan_to_none({**result, "temperature_K": md["temperature_K"],
                                             "volume_A3": start.get_volume(), "pressure_bar": pressure,
                                             "pressure_bar_sem": pressure_sem}))
print(f"reference NVT: {'stable' if result['stable'] else result['reason']}; "
      f"p = {pressure:.0f} +- {pressure_sem:.0f} bar", flush=True)
