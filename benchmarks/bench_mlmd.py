"""ML-MD engines compared in one run: speed, NVE energy drift and force agreement at 64, 512 and 800 ions.

Prints one JSON object.  The four engines, all with the same SchNet (float32 unless said otherwise):

* ``handwritten``: the project's former torch engine (tabulated SchNet, Verlet list, hand-written velocity
  Verlet / Nose-Hoover chain integrators), loaded from ``src/confselect/md_engine.py`` at commit
  ``HANDWRITTEN_COMMIT`` (``git show``) into a temporary module, so both sides run in this process;
* ``ase_schnetcalculator``: :class:`confselect.calculator.SchNetCalculator` (the same tabulated evaluator and
  Verlet list) under ASE's ``VelocityVerlet`` / ``NoseHooverChainNVT`` through :func:`confselect.dynamics.run_md`
  with the workflow's stability observers and sampling on;
* ``schnetpack_md``: ``schnetpack.md.Simulator`` with its ``NHCThermostat`` (or no thermostat for NVE),
  ``VelocityVerlet``, ``SchNetPackCalculator`` and ``NeighborListMD`` (1 A shell around SchNetPack's MatScipy
  list).  SchNetPack's MD calculator casts the model to float64 and the system is float64: this is the
  package as shipped;
* ``ase_spkcalculator``: SchNetPack's ``SpkCalculator`` (MatScipy list rebuilt every call,
  :func:`confselect.calculator.spk_calculator`) under the same ASE integrators and observers.

Per size: ``speed`` (NVT, Nose-Hoover chain, 1300 K, 2 fs, 100 fs; blocks of steps timed with the engines
interleaved and the order rotated every repeat; medians of steps/s by wall clock and by process CPU time; the
machine is shared, so the CPU-time figure is the steadier one and the ratios ``vs_handwritten`` use both);
``nve`` (velocity Verlet from the same start with the same velocities: least-squares drift of the total
energy, meV/atom/ps, and its standard deviation); ``forces`` (largest force and energy difference against
``SpkCalculator`` on the start configuration).

Systems: the 64-ion start is the frame closest to 1300 K of the project's classical pool protocol (LAMMPS,
32 ion pairs, premelt then an NPT ramp 1100 -> 1700 K); 512 ions are that cell repeated 2 x 2 x 2; 800 ions
are a 100-ion melt (50 pairs, same protocol) repeated 2 x 2 x 2.  The model is an untrained
``build_model(32, 3, 20, 5.0, mean, repulsion="zbl")`` (torch seed 0; the demo's architecture; speed does
not depend on the weights).  One torch thread for every engine.

    python benchmarks/bench_mlmd.py --quick    # about 3 min on the busy 2-core machine
    python benchmarks/bench_mlmd.py            # about 8 min

``--threads 1,2`` measures instead the workflow's engine (``ase_schnetcalculator``, as the ml_md job runs it)
at each torch thread count (``validation.threads``): NVT blocks at the thread counts interleaved, the order
rotated every repeat, medians of steps/s by wall clock (CPU time grows with the threads; the wall clock is
what a job waits for), and the machine's load average before and after, since a shared machine's other
work takes cores from the extra threads.  With ``--teacher`` the same comparison runs the classical teacher's
LAMMPS NVT (as ``reference_md`` sets it up, ``confselect.classical``) serial for 1 thread and with the OPENMP
package (``-sf omp -pk omp N``) for N > 1:

    python benchmarks/bench_mlmd.py --threads 1,2 --sizes 64,800 --teacher
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

#: The last commit with the hand-written integrators (src/confselect/md_engine.py).
HANDWRITTEN_COMMIT = "9830212"
CUTOFF_A = 5.0
SKIN_A = 1.0
TEMPERATURE_K = 1300.0
TIMESTEP_FS = 2.0
TDAMP_FS = 100.0
ENGINES = ("handwritten", "ase_schnetcalculator", "schnetpack_md", "ase_spkcalculator")
#: steps per timed block, NVE steps (full run; --quick divides by QUICK)
STEPS = {"64": (300, 1000), "512": (60, 300), "800": (40, 200)}
SPK_STEPS = {"64": (40, 300), "512": (8, 60), "800": (6, 40)}  # SpkCalculator: its own, shorter runs
QUICK = 3
#: steps per timed block of the --threads comparison (full run; --quick divides by QUICK)
THREAD_STEPS = {"64": 600, "512": 150, "800": 150}
TEACHER_STEPS = {"64": 3000, "512": 450, "800": 300}


def load_handwritten_engine():
    """The hand-written engine module as it was at :data:`HANDWRITTEN_COMMIT`."""
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{HANDWRITTEN_COMMIT}:src/confselect/md_engine.py"],
                            check=True, capture_output=True, text=True).stdout
    name = f"confselect._md_engine_{HANDWRITTEN_COMMIT}"  # inside the package: its relative imports resolve
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "confselect"
    sys.modules[name] = module
    exec(compile(source, f"{HANDWRITTEN_COMMIT}:md_engine.py", "exec"), module.__dict__)
    return module


def melt(n_ion_pairs: int, quick: bool, seed: int = 5):
    """A molten NaCl frame near 1300 K from the project's classical pool protocol (LAMMPS)."""
    import yaml

    from confselect.classical import run_classical_md

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    protocol = dict(config["pool"]["md"], premelt_fs=1000.0 if quick else 2000.0,
                    T_start_K=1100.0, T_end_K=1700.0, ramp_fs=4000.0, frame_interval_fs=1000.0)
    system = dict(config["systems"]["NaCl"], structure=dict(config["systems"]["NaCl"]["structure"],
                                                             composition={"Na": n_ion_pairs, "Cl": n_ion_pairs}))
    frames = []
    run_classical_md(system, protocol, seed=seed, on_frame=frames.append)
    start = min(frames, key=lambda f: abs(f.info["temperature_K"] - TEMPERATURE_K)).copy()
    start.calc = None
    return start, float(np.mean([f.get_potential_energy() / len(f) for f in frames]))


def with_velocities(atoms, seed: int):
    from ase.md.velocitydistribution import Stationary, thermalize_momenta

    atoms = atoms.copy()
    thermalize_momenta(atoms, TEMPERATURE_K, rng=np.random.default_rng(seed))
    Stationary(atoms)
    return atoms


# ------------------------------------------------------------------------------------------------ engines


class Handwritten:
    def __init__(self, module, model_path, start):
        self.engine = module.MDEngine(model_path, start, backend="tabulated", skin_A=SKIN_A)

    def forces(self, atoms):
        out = self.engine.evaluate(atoms)
        return out["energy_eV"], out["forces_eV_A"]

    def run(self, start, ensemble, steps, every):
        """(wall s, CPU s, time_fs, total energy eV)"""
        self.engine.set_state(start)
        r = self.engine.run(ensemble, steps=steps, timestep_fs=TIMESTEP_FS, temperature_K=TEMPERATURE_K,
                            thermostat_damping_fs=TDAMP_FS, sample_every=every, min_distance_A=1.0,
                            max_force_eV_A=1e3)
        assert r.steps == steps, r.stop_reason
        return r.wall_time_s, r.cpu_time_s, r.series["time_fs"], r.series["potential_eV"] + r.series["kinetic_eV"]


class AseEngine:
    """ASE integrators through confselect.dynamics.run_md on a given calculator."""

    def __init__(self, calculator):
        self.calculator = calculator

    def forces(self, atoms):
        atoms = atoms.copy()
        atoms.calc = self.calculator
        return atoms.get_potential_energy(), atoms.get_forces()

    def run(self, start, ensemble, steps, every):
        from confselect.dynamics import run_md

        r = run_md(start.copy(), self.calculator, ensemble, steps=steps, timestep_fs=TIMESTEP_FS,
                   temperature_K=TEMPERATURE_K, thermostat_damping_fs=TDAMP_FS, sample_every=every,
                   min_distance_A=1.0, max_force_eV_A=1e3)
        assert r.steps == steps, r.stop_reason
        return r.wall_time_s, r.cpu_time_s, r.series["time_fs"], r.series["potential_eV"] + r.series["kinetic_eV"]


class SchNetPackMD:
    """schnetpack.md: Simulator, VelocityVerlet, NHCThermostat, SchNetPackCalculator, NeighborListMD."""

    def __init__(self, model_path):
        import schnetpack.transform as trn
        from schnetpack.md import calculators, neighborlist_md

        class Calculator(calculators.SchNetPackCalculator):
            @staticmethod
            def _deactivate_postprocessing(model):  # SchNetPack 2.2.0 fails to format a shape-(1,) offset in its log
                model.do_postprocessing = False
                return model

        self.calculator = Calculator(
            str(model_path), force_key="forces", energy_unit="eV", position_unit="Angstrom", energy_key="energy",
            neighbor_list=neighborlist_md.NeighborListMD(CUTOFF_A, SKIN_A, trn.MatScipyNeighborList),
        )

    def _system(self, atoms):
        import torch
        from ase import units as ase_units
        from schnetpack import units as spk_units
        from schnetpack.md import System

        system = System()
        system.load_molecules(atoms)
        to_internal = ase_units.fs / spk_units.unit2internal("fs") * spk_units.unit2internal("Angstrom")
        velocities = torch.from_numpy(atoms.get_velocities() * to_internal)
        system.momenta = (system.masses * velocities[None].to(system.masses.dtype))
        return system.to(torch.float64)

    def _simulator(self, system, ensemble):
        from schnetpack.md import Simulator
        from schnetpack.md.integrators import VelocityVerlet
        from schnetpack.md.simulation_hooks import NHCThermostat

        hooks = [NHCThermostat(TEMPERATURE_K, TDAMP_FS)] if ensemble == "nvt" else []
        return Simulator(system, VelocityVerlet(TIMESTEP_FS), self.calculator, simulator_hooks=hooks, progress=False)

    @staticmethod
    def _energy_eV(system) -> float:
        from schnetpack import units as spk_units

        total = system.potential_energy + system.kinetic_energy
        return float(total.sum()) / spk_units.unit2internal("eV")

    def forces(self, atoms):
        from schnetpack import units as spk_units

        system = self._system(atoms)
        self.calculator.calculate(system)
        force_unit = spk_units.unit2internal("eV") / spk_units.unit2internal("Angstrom")
        energy = float(system.potential_energy.sum()) / spk_units.unit2internal("eV")
        return energy, system.forces[0].detach().cpu().numpy() / force_unit

    def run(self, start, ensemble, steps, every):
        system = self._system(start)
        simulator = self._simulator(system, ensemble)
        times, energies, wall, cpu = [], [], 0.0, 0.0
        if ensemble == "nve":  # record the energy every `every` steps (simulate() re-evaluates at each call)
            simulator.simulate(0)
            times.append(0.0), energies.append(self._energy_eV(system))
            for k in range(steps // every):
                simulator.simulate(every)
                times.append((k + 1) * every * TIMESTEP_FS), energies.append(self._energy_eV(system))
            return None, None, np.array(times), np.array(energies)
        simulator.simulate(1)  # set-up (thermostat initialisation, first neighbour list) is not timed
        wall0, cpu0 = time.perf_counter(), time.process_time()
        simulator.simulate(steps)
        return time.perf_counter() - wall0, time.process_time() - cpu0, None, None


# ------------------------------------------------------------------------------------------------ measures


def drift(time_fs, total_eV, n_atoms: int) -> dict:
    t_ps = np.asarray(time_fs) / 1000.0
    e = np.asarray(total_eV) / n_atoms * 1000.0  # meV/atom
    return {"duration_fs": float(t_ps[-1] * 1000.0), "drift_meV_atom_ps": float(np.polyfit(t_ps, e, 1)[0]),
            "std_total_meV_atom": float(e.std())}


def speed(engines: dict, start, steps: dict, repeats: int) -> dict:
    """Interleaved NVT blocks, the order rotated every repeat; medians of steps/s (wall and CPU time)."""
    names = list(engines)
    for name in names:  # warm-up: first-call allocations, lazy imports, thermostat set-up paths
        engines[name].run(start, "nvt", 2, 2)
    samples = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            n = steps[name]
            wall, cpu, _, _ = engines[name].run(start, "nvt", n, n)
            samples[name].append((n / wall, n / cpu))
    out = {}
    for name, values in samples.items():
        out[name] = {"steps": steps[name],
                     "steps_per_s_wall": statistics.median(v[0] for v in values),
                     "steps_per_s_cpu": statistics.median(v[1] for v in values),
                     "all_wall": [round(v[0], 2) for v in values], "all_cpu": [round(v[1], 2) for v in values]}
    base = out["handwritten"]
    for name in names:
        for clock in ("wall", "cpu"):
            out[name][f"vs_handwritten_{clock}"] = out[name][f"steps_per_s_{clock}"] / base[f"steps_per_s_{clock}"]
    return out


def case(engines: dict, start, size: str, quick: bool, repeats: int) -> dict:
    divide = QUICK if quick else 1
    block = {name: max(2, (SPK_STEPS if name == "ase_spkcalculator" else STEPS)[size][0] // divide)
             for name in engines}
    nve_steps = {name: max(10, (SPK_STEPS if name == "ase_spkcalculator" else STEPS)[size][1] // divide)
                 for name in engines}
    reference_energy, reference_forces = engines["ase_spkcalculator"].forces(start)
    forces = {}
    for name, engine in engines.items():
        energy, f = engine.forces(start)
        forces[name] = {"max_abs_dF_eV_A": float(np.abs(f - reference_forces).max()),
                        "abs_dE_eV": float(abs(energy - reference_energy))}
    forces["spk_force_rms_eV_A"] = float(np.sqrt(np.mean(reference_forces**2)))
    forces["note"] = "schnetpack_md runs without AddOffsets post-processing: its abs_dE_eV is the mean offset"
    nve = {}
    for name, engine in engines.items():
        steps = nve_steps[name]
        every = max(1, steps // 50)
        _, _, t, e = engine.run(start, "nve", steps - steps % every, every)
        nve[name] = {"steps": steps - steps % every, **drift(t, e, len(start))}
    return {"n_atoms": len(start), "speed": speed(engines, start, block, repeats), "nve": nve, "forces": forces}


def thread_speed(engine, start, steps: int, repeats: int, thread_counts: list[int]) -> dict:
    """Interleaved NVT blocks at each torch thread count, the order rotated every repeat; medians of
    steps/s by wall clock, and the speed-up over the first thread count."""
    import torch

    for threads in thread_counts:  # warm-up at every count (thread pools are created lazily)
        torch.set_num_threads(threads)
        engine.run(start, "nvt", 2, 2)
    samples = {threads: [] for threads in thread_counts}
    for r in range(repeats):
        for threads in thread_counts[r % len(thread_counts):] + thread_counts[: r % len(thread_counts)]:
            torch.set_num_threads(threads)
            wall, cpu, _, _ = engine.run(start, "nvt", steps, steps)
            samples[threads].append((steps / wall, cpu / wall))
    out = {}
    for threads, values in samples.items():
        out[str(threads)] = {"steps": steps, "steps_per_s_wall": statistics.median(v[0] for v in values),
                             "cpu_per_wall": statistics.median(v[1] for v in values),
                             "all_wall": [round(v[0], 2) for v in values]}
    base = out[str(thread_counts[0])]["steps_per_s_wall"]
    for entry in out.values():
        entry["speedup_wall"] = entry["steps_per_s_wall"] / base
    return out


class LammpsTeacher:
    """The classical teacher's LAMMPS NVT from ``start`` (``confselect.classical``'s set-up), with extra
    command-line switches for the OPENMP package when ``threads`` > 1."""

    def __init__(self, threads: int):
        import yaml

        self.threads = threads
        self.system = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["systems"]["NaCl"]

    @contextlib.contextmanager
    def _switches(self):
        """LAMMPS instances started inside get ``-sf omp -pk omp N`` (N > 1) on their command line."""
        from confselect import classical

        module = classical.load_lammps()
        original = module.lammps
        extra = ["-sf", "omp", "-pk", "omp", str(self.threads)] if self.threads > 1 else []
        module.lammps = lambda cmdargs=None, **kw: original(cmdargs=[*(cmdargs or []), *extra], **kw)
        try:
            yield
        finally:
            module.lammps = original

    def run(self, start, ensemble, steps, every):
        from confselect.classical import _lammps_from_atoms

        assert ensemble == "nvt"
        with self._switches():
            lmp, _ = _lammps_from_atoms(self.system, start, TIMESTEP_FS, max(steps, 2))
        lmp.commands_list([f"velocity all create {TEMPERATURE_K} 1 mom yes rot yes dist gaussian",
                           f"fix nvt all nvt temp {TEMPERATURE_K} {TEMPERATURE_K} {TDAMP_FS / 1000.0}",
                           "run 2"])  # set-up (neighbour lists, PPPM) not timed
        wall0, cpu0 = time.perf_counter(), time.process_time()
        lmp.command(f"run {steps} pre no post no")
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        lmp.close()
        return wall, cpu, None, None


def teacher_speed(start, steps: int, repeats: int, thread_counts: list[int]) -> dict:
    """As :func:`thread_speed`, for the LAMMPS teacher (serial at 1 thread, OPENMP package above)."""
    engines = {threads: LammpsTeacher(threads) for threads in thread_counts}
    samples = {threads: [] for threads in thread_counts}
    for r in range(repeats):
        for threads in thread_counts[r % len(thread_counts):] + thread_counts[: r % len(thread_counts)]:
            wall, cpu, _, _ = engines[threads].run(start, "nvt", steps, steps)
            samples[threads].append((steps / wall, cpu / wall))
    out = {str(t): {"steps": steps, "steps_per_s_wall": statistics.median(v[0] for v in values),
                    "cpu_per_wall": statistics.median(v[1] for v in values),
                    "all_wall": [round(v[0], 2) for v in values]} for t, values in samples.items()}
    base = out[str(thread_counts[0])]["steps_per_s_wall"]
    for entry in out.values():
        entry["speedup_wall"] = entry["steps_per_s_wall"] / base
    return out


def threads_main(args) -> dict:
    """The --threads comparison: the workflow's ML-MD engine at each torch thread count."""
    import os

    import torch

    from confselect.calculator import SchNetCalculator
    from confselect.training import build_model

    thread_counts = [int(t) for t in args.threads.split(",")]
    repeats = args.repeats or (3 if args.quick else 5)
    t0 = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="bench_mlmd_"))
    sizes = args.sizes.split(",")
    melt64, mean = melt(32, args.quick)
    starts = {"64": lambda: with_velocities(melt64, 1), "512": lambda: with_velocities(melt64.repeat((2, 2, 2)), 2),
              "800": lambda: with_velocities(melt(50, args.quick, seed=6)[0].repeat((2, 2, 2)), 3)}
    torch.manual_seed(0)
    model_path = workdir / "model.pt"
    torch.save(build_model(32, 3, 20, CUTOFF_A, mean, repulsion="zbl").eval(), model_path)
    engine = AseEngine(SchNetCalculator(model_path, skin_A=SKIN_A, backend="tabulated"))
    report = {
        "benchmark": "bench_mlmd --threads", "quick": args.quick, "engine": "ase_schnetcalculator",
        "machine": {"python": platform.python_version(), "torch": torch.__version__,
                    "cores": len(os.sched_getaffinity(0)), "load_average_before": os.getloadavg()},
        "model": f"untrained build_model(32, 3, 20, 5.0, {mean:.4f}, repulsion='zbl'), torch seed 0",
        "run": {"temperature_K": TEMPERATURE_K, "timestep_fs": TIMESTEP_FS, "thermostat_damping_fs": TDAMP_FS,
                "cutoff_A": CUTOFF_A, "skin_A": SKIN_A},
        "sizes": {},
    }
    for size in sizes:
        start = starts[size]()
        steps = max(10, THREAD_STEPS[size] // (QUICK if args.quick else 1))
        report["sizes"][size] = {"n_atoms": len(start),
                                 "threads": thread_speed(engine, start, steps, repeats, thread_counts)}
        if args.teacher:
            report["sizes"][size]["teacher_lammps"] = teacher_speed(start, TEACHER_STEPS[size] // (
                QUICK if args.quick else 1), repeats, thread_counts)
        print(f"{size} ions: done after {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    report["machine"]["load_average_after"] = os.getloadavg()
    report["total_s"] = time.perf_counter() - t0
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter runs (a third of the steps)")
    parser.add_argument("--repeats", type=int, default=None, help="timed blocks per engine (default 5, quick 3)")
    parser.add_argument("--sizes", default="64,512,800")
    parser.add_argument("--threads", default=None,
                        help="comma-separated torch thread counts: compare them on the workflow's engine instead")
    parser.add_argument("--teacher", action="store_true", help="with --threads: also the LAMMPS teacher")
    args = parser.parse_args(argv)
    if args.threads:
        print(json.dumps(threads_main(args), indent=1))
        return

    import torch

    from confselect.calculator import SchNetCalculator, spk_calculator
    from confselect.training import build_model

    torch.set_num_threads(1)
    repeats = args.repeats or (3 if args.quick else 5)
    t0 = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="bench_mlmd_"))
    melt64, mean = melt(32, args.quick)
    melt100, _ = melt(50, args.quick, seed=6)
    starts = {"64": with_velocities(melt64, 1), "512": with_velocities(melt64.repeat((2, 2, 2)), 2),
              "800": with_velocities(melt100.repeat((2, 2, 2)), 3)}
    torch.manual_seed(0)
    model_path = workdir / "model.pt"
    torch.save(build_model(32, 3, 20, CUTOFF_A, mean, repulsion="zbl").eval(), model_path)
    handwritten = load_handwritten_engine()

    report = {
        "benchmark": "bench_mlmd", "quick": args.quick,
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "threads": 1,
                    "cores": len(__import__("os").sched_getaffinity(0))},
        "model": f"untrained build_model(32, 3, 20, 5.0, {mean:.4f}, repulsion='zbl'), torch seed 0",
        "handwritten_commit": HANDWRITTEN_COMMIT,
        "systems": {"64": "NaCl 32 pairs, classical melt near 1300 K", "512": "the 64-ion melt repeated 2x2x2",
                    "800": "a 100-ion NaCl melt (50 pairs, same protocol) repeated 2x2x2"},
        "run": {"temperature_K": TEMPERATURE_K, "timestep_fs": TIMESTEP_FS, "thermostat_damping_fs": TDAMP_FS,
                "cutoff_A": CUTOFF_A, "skin_A": SKIN_A},
        "sizes": {},
    }
    for size in args.sizes.split(","):
        start = starts[size]
        engines = {
            "handwritten": Handwritten(handwritten, model_path, start),
            "ase_schnetcalculator": AseEngine(SchNetCalculator(model_path, skin_A=SKIN_A, backend="tabulated")),
            "schnetpack_md": SchNetPackMD(model_path),
            "ase_spkcalculator": AseEngine(spk_calculator(model_path, CUTOFF_A)),
        }
        report["sizes"][size] = case(engines, start, size, args.quick, repeats)
        print(f"{size} ions: done after {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    report["total_s"] = time.perf_counter() - t0
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
