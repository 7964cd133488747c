"""ML-MD speed and accuracy: the torch engine (confselect.md_engine) against ASE + SchNetPack's SpkCalculator.

Prints one JSON object with, for molten NaCl of 64 and 512 ions:

* ``forces``: energy and force differences between the engine (both backends) and ``SpkCalculator`` on the
  same configuration (eV, eV/A);
* ``speed``: NVT steps per second (Nose-Hoover chain, 100 fs, 1300 K, 2 fs, as the workflow's validation
  runs) of the baseline (ASE ``NoseHooverChainNVT`` + ``SpkCalculator`` with SchNetPack's MatScipy neighbour
  list, energy unit eV: :func:`confselect.mlmd.spk_calculator`, the standard SchNetPack route) and of the
  engine ("direct": the model as it is, with a Verlet list; "tabulated": SchNet filters tabulated), measured
  in the same process, interleaved, repeated; wall-clock and CPU-time rates (the machine is shared, so CPU
  time is the steadier figure), medians over repeats; plus NPT (isotropic MTK) for 64 ions;
* ``nve``: energy conservation of both in NVE (velocity Verlet, 2 fs) from the same start: drift of the total
  energy (least-squares slope, meV/atom/ps), its standard deviation (meV/atom), and for scale the standard
  deviation of the potential energy.

The model is a SchNet of the project's architecture (``build_model(64, 3, 20, 5.0, mean, repulsion="zbl")``,
the workflow's default with SchNetPack's fixed ZBL prior; ``--repulsion none`` for plain SchNet), the same
object for both engines, float32.  Starting structures come from the project's LAMMPS pool code
(``run_classical_md``, 32 ion pairs, premelt, then an NPT ramp 1100 -> 1700 K with a frame every ps); the
start is the frame closest to 1300 K, and the 512-ion start is that cell repeated 2 x 2 x 2.  Without
``--model`` the full run first trains the SchNet (SchNetTrainer, 300 epochs) on the 32 ramp frames, labelled
by the classical teacher (the model.pt is kept in ``--workdir`` and reused).  ``--quick`` uses untrained
weights (speed does not depend on the weights) and shorter runs.  The engine's early-stop checks are off in
these timing and NVE runs, so both engines integrate the same number of steps; the minimum distance and
largest force seen are reported instead.

    python benchmarks/bench_mlmd.py --quick                    # 3 min on the busy 2-core machine
    python benchmarks/bench_mlmd.py                            # trains first (about 3 min), then times
    python benchmarks/bench_mlmd.py --model results/.../model.pt
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

CUTOFF_A = 5.0
TEMPERATURE_K = 1300.0
TIMESTEP_FS = 2.0
TDAMP_FS = 100.0


def load_config() -> dict:
    import yaml

    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def load_system() -> dict:
    return load_config()["systems"]["NaCl"]


def classical_frames(n_frames: int, quick: bool, seed: int = 5):
    """Molten NaCl frames (32 ion pairs) with classical energies/forces from the project's LAMMPS pool code."""
    from confselect.classical import run_classical_md

    config = load_config()
    system = config["systems"]["NaCl"]
    interval_fs = 1000.0
    protocol = dict(
        config["pool"],
        n_ion_pairs=32,
        premelt_fs=1000.0 if quick else 2000.0,
        T_start_K=1100.0,
        T_end_K=1700.0,
        ramp_fs=interval_fs * n_frames,
        frame_interval_fs=interval_fs,
    )
    frames = []
    run_classical_md(system, protocol, seed=seed, on_frame=frames.append)
    return frames


def get_model(args, frames, workdir: Path):
    """Path of the model.pt to benchmark, and a note on where it came from."""
    import torch

    from confselect.training import SchNetTrainer, build_model

    if args.model:
        return Path(args.model), f"given: {args.model}"
    mean = float(np.mean([f.get_potential_energy() / len(f) for f in frames]))
    if args.quick:
        torch.manual_seed(0)
        path = workdir / f"untrained_{args.repulsion}" / "model.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(build_model(64, 3, 20, CUTOFF_A, mean, repulsion=args.repulsion).eval(), path)
        return path, f"untrained build_model(64, 3, 20, 5.0, mean of classical energies, repulsion={args.repulsion!r})"
    path = workdir / f"trained_{args.epochs}_{args.repulsion}" / "model.pt"
    note = (f"SchNetTrainer(epochs={args.epochs}, learning_rate={args.learning_rate}, repulsion={args.repulsion!r}) "
            f"on the {len(frames)} classical melt frames")
    if not path.exists():
        start = time.perf_counter()
        SchNetTrainer(epochs=args.epochs, learning_rate=args.learning_rate, threads=1,
                      repulsion=args.repulsion).fit(frames, path.parent)
        note += f", trained in {time.perf_counter() - start:.0f} s"
    else:
        note += " (reused from the work directory)"
    return path, note


def spk_atoms(start, model_path, stress: bool = False):
    """A copy of ``start`` with the workflow's SpkCalculator attached (for NPT one that also gives the stress)."""
    from confselect.mlmd import spk_calculator

    atoms = start.copy()
    if stress:
        import schnetpack.transform as trn
        from schnetpack.interfaces import SpkCalculator

        atoms.calc = SpkCalculator(model=str(model_path), neighbor_list=trn.MatScipyNeighborList(cutoff=CUTOFF_A),
                                   energy_unit="eV", position_unit="Ang", stress_key="stress")
    else:
        atoms.calc = spk_calculator(model_path, CUTOFF_A)
    return atoms


def with_velocities(atoms, seed: int):
    from ase.md.velocitydistribution import Stationary, thermalize_momenta

    atoms = atoms.copy()
    thermalize_momenta(atoms, TEMPERATURE_K, rng=np.random.default_rng(seed))
    Stationary(atoms)
    return atoms


# ------------------------------------------------------------------------------------------------ checks


def force_agreement(start, model_path):
    from confselect.md_engine import MDEngine

    atoms = spk_atoms(start, model_path, stress=True)
    energy, forces, stress = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(voigt=False)
    out = {"spk_force_rms_eV_A": float(np.sqrt(np.mean(forces**2)))}
    for backend in ("direct", "tabulated"):
        result = MDEngine(model_path, start, backend=backend).evaluate()
        out[backend] = {
            "max_abs_dF_eV_A": float(np.abs(result["forces_eV_A"] - forces).max()),
            "abs_dE_eV": float(abs(result["energy_eV"] - energy)),
            "max_abs_dstress_eV_A3": float(np.abs(result["stress_eV_A3"] - stress).max()),
        }
    return out


# ------------------------------------------------------------------------------------------------ speed


def time_ase(start, model_path, steps: int, ensemble: str):
    """(wall s, CPU s) of ``steps`` ASE steps with SpkCalculator (integrator and calculator set up outside)."""
    from ase import units
    from ase.md.nose_hoover_chain import IsotropicMTKNPT, NoseHooverChainNVT

    atoms = spk_atoms(start, model_path, stress=ensemble == "npt")
    kw = dict(timestep=TIMESTEP_FS * units.fs, temperature_K=TEMPERATURE_K, tdamp=TDAMP_FS * units.fs)
    if ensemble == "nvt":
        dyn = NoseHooverChainNVT(atoms, **kw)
    else:
        dyn = IsotropicMTKNPT(atoms, pressure_au=1.0 * units.bar, pdamp=1000.0 * units.fs, **kw)
    atoms.get_forces()  # the first evaluation belongs to the setup, as the engine's does
    wall, cpu = time.perf_counter(), time.process_time()
    dyn.run(steps)
    return time.perf_counter() - wall, time.process_time() - cpu


def time_engine(engine, start, steps: int, ensemble: str):
    """(wall s, CPU s) of ``steps`` engine steps from ``start`` (state reset; construction not timed)."""
    engine.set_state(start)
    result = engine.run(ensemble, steps=steps, timestep_fs=TIMESTEP_FS, temperature_K=TEMPERATURE_K,
                        thermostat_damping_fs=TDAMP_FS, pressure_bar=1.0, barostat_damping_fs=1000.0,
                        sample_every=steps, max_force_eV_A=float("inf"), min_distance_A=0.0)
    return result.wall_time_s, result.cpu_time_s


def speed(start, model_path, steps: int, repeats: int, ensemble: str = "nvt", backends=("direct", "tabulated")):
    from confselect.md_engine import MDEngine

    setup_s, engines = {}, {}
    for backend in backends:
        t = time.perf_counter()
        engines[backend] = MDEngine(model_path, start, backend=backend)
        setup_s[backend] = time.perf_counter() - t
    runners = {"ase_spk": lambda n: time_ase(start, model_path, n, ensemble)}
    for backend, engine in engines.items():
        runners[f"engine_{backend}"] = lambda n, e=engine: time_engine(e, start, n, ensemble)
    for run in runners.values():  # warm-up (first-call allocations, lazy imports)
        run(2)
    samples = {name: [] for name in runners}
    names = list(runners)
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:  # rotate the order every repeat
            wall, cpu = runners[name](steps)
            samples[name].append((steps / wall, steps / cpu))
    out = {"steps_per_block": steps, "repeats": repeats, "engine_setup_s": setup_s}
    for name, values in samples.items():
        out[name] = {
            "steps_per_s_wall": statistics.median(v[0] for v in values),
            "steps_per_s_cpu": statistics.median(v[1] for v in values),
            "all_wall": [round(v[0], 2) for v in values],
        }
    base = out["ase_spk"]
    for backend in backends:
        e = out[f"engine_{backend}"]
        e["speedup_wall"] = e["steps_per_s_wall"] / base["steps_per_s_wall"]
        e["speedup_cpu"] = e["steps_per_s_cpu"] / base["steps_per_s_cpu"]
    return out


# ------------------------------------------------------------------------------------------------ NVE


def conservation(time_fs, total_eV, potential_eV, n_atoms: int, min_distance, max_force):
    t_ps = np.asarray(time_fs) / 1000.0
    e = np.asarray(total_eV) / n_atoms * 1000.0  # meV/atom
    return {
        "duration_fs": float(time_fs[-1]),
        "drift_meV_atom_ps": float(np.polyfit(t_ps, e, 1)[0]),
        "std_total_meV_atom": float(e.std()),
        "std_potential_meV_atom": float(np.std(potential_eV) / n_atoms * 1000.0),
        "min_distance_A": float(np.min(min_distance)),
        "max_force_eV_A": float(np.max(max_force)),
    }


def nve_ase(start, model_path, steps: int, every: int):
    from ase import units
    from ase.md.verlet import VelocityVerlet

    from confselect.mlmd import minimum_distance

    atoms = spk_atoms(start, model_path)
    dyn = VelocityVerlet(atoms, timestep=TIMESTEP_FS * units.fs)
    rec = {"t": [], "e": [], "u": [], "f": [], "d": []}

    def record():
        u = atoms.get_potential_energy()
        rec["t"].append(dyn.nsteps * TIMESTEP_FS)
        rec["u"].append(u)
        rec["e"].append(u + atoms.get_kinetic_energy())
        rec["f"].append(float(np.linalg.norm(atoms.get_forces(), axis=1).max()))
        rec["d"].append(minimum_distance(atoms))

    dyn.attach(record, interval=every)
    dyn.run(steps)
    return conservation(rec["t"], rec["e"], rec["u"], len(atoms), rec["d"], rec["f"])


def nve_engine(start, model_path, steps: int, every: int, backend: str):
    from confselect.md_engine import MDEngine

    engine = MDEngine(model_path, start, backend=backend)
    result = engine.run("nve", steps=steps, timestep_fs=TIMESTEP_FS, sample_every=every,
                        max_force_eV_A=float("inf"), min_distance_A=0.0)
    s = result.series
    out = conservation(s["time_fs"], s["potential_eV"] + s["kinetic_eV"], s["potential_eV"], len(start),
                       s["min_distance_A"], s["max_force_eV_A"])
    out.update(neighbour_list_builds=result.neighbour_list_builds, stop_reason=result.stop_reason)
    return out


# ------------------------------------------------------------------------------------------------ main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="untrained model, shorter runs")
    parser.add_argument("--model", help="model.pt to benchmark (skips training)")
    parser.add_argument("--workdir", help="where to keep the trained model (default: a new temporary directory)")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--learning-rate", type=float, default=5e-3)
    parser.add_argument("--repulsion", choices=("zbl", "none"), default="zbl",
                        help="the model's repulsion prior (the workflow's default: zbl)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both engines")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench_mlmd_"))
    workdir.mkdir(parents=True, exist_ok=True)
    quick = args.quick
    repeats = args.repeats or (2 if quick else 3)

    t0 = time.perf_counter()
    frames = classical_frames(4 if quick else 32, quick)
    classical_s = time.perf_counter() - t0
    model_path, model_note = get_model(args, frames, workdir)
    # start: the classical frame closest to the run temperature, with fresh velocities at 1300 K
    start64 = min(frames, key=lambda f: abs(f.info["temperature_K"] - TEMPERATURE_K)).copy()
    start64.calc = None
    start64 = with_velocities(start64, seed=1)
    start512 = with_velocities(start64.repeat((2, 2, 2)), seed=2)

    report = {
        "benchmark": "bench_mlmd",
        "quick": quick,
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": args.threads},
        "model": model_note,
        "system": {
            "n64": {"density_g_cm3": float(start64.get_masses().sum() / start64.get_volume() * 1.66053907),
                    "cell_A": float(start64.cell.lengths()[0])},
            "classical_frames": len(frames),
            "classical_md_s": classical_s,
        },
        "run": {"temperature_K": TEMPERATURE_K, "timestep_fs": TIMESTEP_FS, "thermostat_damping_fs": TDAMP_FS,
                "cutoff_A": CUTOFF_A, "engine_skin_A": 1.0},
        "forces": {},
        "speed": {},
        "nve": {},
    }
    for name, start in (("64", start64), ("512", start512)):
        report["forces"][name] = force_agreement(start, model_path)
        print(f"forces {name}: done", file=sys.stderr, flush=True)
    report["speed"]["nvt_64"] = speed(start64, model_path, 40 if quick else 150, repeats)
    print("speed 64: done", file=sys.stderr, flush=True)
    report["speed"]["nvt_512"] = speed(start512, model_path, 8 if quick else 30, repeats)
    print("speed 512: done", file=sys.stderr, flush=True)
    report["speed"]["npt_64"] = speed(start64, model_path, 20 if quick else 100, repeats, ensemble="npt",
                                      backends=("tabulated",))
    print("speed npt: done", file=sys.stderr, flush=True)

    nve_cases = [("64", start64, 250 if quick else 1000)] + ([] if quick else [("512", start512, 500)])
    for name, start, steps in nve_cases:
        case = {"steps": steps, "ase_spk": nve_ase(start, model_path, steps, every=5)}
        case["engine_tabulated"] = nve_engine(start, model_path, steps, 5, "tabulated")
        if name == "64" and not quick:
            case["engine_direct"] = nve_engine(start, model_path, steps, 5, "direct")
        report["nve"][name] = case
        print(f"nve {name}: done", file=sys.stderr, flush=True)
    report["total_s"] = time.perf_counter() - t0
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
