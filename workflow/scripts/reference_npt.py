"""The teacher's NPT runs (LAMMPS) at every validation temperature: reference densities (000 Fig. 3) and the
state point (density, start frame) of every NVT run, models and reference alike."""
from ase.io import write

from confselect.classical import run_classical_npt
from confselect.jobs import log_to, write_json
from confselect.pool import read_frames
from confselect.progress import Progress
from confselect.state_point import state_points, temperature_key
from confselect.structures import build_structure, system_phase
from confselect.validation import equilibrated, npt_density, validation_start

log_to(snakemake)
system = snakemake.config["systems"][snakemake.wildcards.system]  # runnable: potential files by path
p = snakemake.params
d = p.density
if system_phase(system) == "crystal":  # the ideal crystal, not a strained or rattled held-out frame
    start = build_structure(system).repeat(tuple(int(k) for k in p.supercell))
else:
    start = validation_start(read_frames(snakemake.input[0]), p.md, p.supercell)

runs = {}
for temperature in p.temperatures_K:
    frames = []
    progress = Progress(f"reference NPT {temperature:g} K", int(d["duration_fs"] // d["sample_interval_fs"]))
    run_classical_npt(
        system, start, temperature, d["pressure_bar"], d["timestep_fs"], d["duration_fs"],
        d["thermostat_damping_fs"], d["barostat_damping_fs"], d["sample_interval_fs"], seed=0,
        on_frame=frames.append, progress=lambda k, n, f: progress(k),
    )
    runs[temperature_key(temperature)] = {"temperature_K": temperature, "frames": frames,
                                          **npt_density(equilibrated(frames, d["equilibration_fs"]))}
    print(f"reference NPT {temperature:g} K: {runs[temperature_key(temperature)]['density_g_cm3']:.4f} g/cm^3", flush=True)

points = state_points(runs, p.temperatures_K, p.state_point, snakemake.wildcards.system, p.experiment)
write(snakemake.output.state_points, [point["frame"] for point in points.values()], format="extxyz")
scan = {key: {k: v for k, v in runs[key].items() if k != "frames"} for key in map(temperature_key, d["temperatures_K"])}
write_json(snakemake.output.npt, {
    "n_atoms": len(start), "pressure_bar": d["pressure_bar"], "duration_fs": d["duration_fs"],
    "equilibration_fs": d["equilibration_fs"], "runs": scan,
    "state_points": {key: {k: v for k, v in point.items() if k != "frame"} for key, point in points.items()},
})
for key, point in points.items():
    print(f"state point {key} K: {point['density_g_cm3']:.4f} g/cm^3 ({point['density_source']})", flush=True)
