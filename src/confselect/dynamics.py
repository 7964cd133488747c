"""ML-MD with ASE's integrators: NVE, NVT (Nose-Hoover chain) and NPT (isotropic MTK), with stability
observers and sampling.

:func:`run_md` drives ``ase.md.verlet.VelocityVerlet``, ``ase.md.nose_hoover_chain.NoseHooverChainNVT`` or
``ase.md.nose_hoover_chain.IsotropicMTKNPT`` (ase 3.29) on any ASE calculator; the workflow gives it a
:class:`confselect.calculator.SchNetCalculator`.  Three observers are attached to the dynamics:
:class:`StabilityCheck` (every step: non-finite values, a force above the ceiling, a pair closer than the
limit), :class:`Sampler` (every ``sample_every`` steps: the series and frames of :class:`MDResult`, and the
caller's callback) and the progress line.  A check that fails raises :class:`StopRun`, which ends the run
cleanly: the stopping step is sampled and its reason recorded.  An exception inside an integration step (a
model far outside its data can produce non-finite positions) is recorded as ``integration failed: ...``.  A
blow-up is therefore a result, never a crash.

Why ASE's integrators and no longer our own.  Until December 2026 the project integrated with a hand-written
torch engine (velocity Verlet, Nose-Hoover chains and MTK re-implementing ASE's operation for operation, to
keep forces in torch and save ASE's calculator round trip).  ``benchmarks/bench_mlmd.py`` measured both, with
the same tabulated SchNet evaluator and Verlet list, in one run, interleaved (NVT, 1300 K, 2 fs, untrained
demo-architecture SchNet with ZBL, one torch thread, 2 busy cores; medians of 5 blocks, steps/s by CPU time,
wall clock within 2 % of it):

    ions   hand-written   SchNetCalculator + ASE   ratio   schnetpack.md   ASE + SpkCalculator
    64         302              247                0.82        77              74
    512        114              107                0.94        24              24
    800         86               79                0.93        16              17

(two earlier runs during the change, one with shorter blocks, gave 0.89 and 0.76 at 64 ions, 0.79 and
0.94 at 512, 0.90 and 1.00 at 800: the machine was shared).  ASE adds a fixed ~0.4 ms per step (its Nose-Hoover chain in numpy, the
calculator's cache check and ``Atoms`` copy, the observers), which matters only for small systems; that is
within the issue's 25 % of the hand-written engine at every size measured, so the hand-written integrators
were deleted and with them the tests that compared them with ASE step for step.  With the same forces the
trajectories are the same: the NVE drift was identical to the digit (-0.004, -0.020, -0.038 meV/atom/ps at
64, 512, 800 ions over 2, 0.6, 0.4 ps) and forces agree with ``SpkCalculator`` to 1e-5 eV/A.

One system per process at a time: ASE's integrators move one ``Atoms``, so the GPU batch of systems that
``schnetpack.md`` offers (replicas integrated together) is not possible here; the workflow instead runs a
model's NVT and NPT runs one after another in one process with one loaded calculator.

Units are ASE's: positions A, energies eV, forces eV/A, time fs (ASE time internally), temperature K,
pressure bar, masses amu.

Degrees of freedom.  Velocities are drawn with zero total momentum, and no integrator here changes it, so a
system of N atoms has 3N - 3 kinetic degrees of freedom.  LAMMPS counts them so (its ``temp`` compute and
``fix nvt`` use 3N - 3); ASE's Nose-Hoover chain thermostats 3N and ``Atoms.get_temperature`` divides by 3N.
Left so, an ASE run is hotter than its target by N / (N - 1) (21 K at 1300 K for 64 ions) and reports a
temperature that reads low by the same factor.  :func:`make_integrator` therefore gives ASE's thermostat the
3N - 3 degrees of freedom, and every temperature here is :func:`kinetic_temperature`, 2 K / ((3N - 3) kB),
so the ML engine and the teacher are thermostatted and measured alike.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.singlepoint import SinglePointCalculator

#: Early-stop reasons.
STOP_NONFINITE = "non-finite values"
STOP_FORCE = "force above threshold"
STOP_DISTANCE = "atoms too close"
STOP_CALLBACK = "stopped by callback"

SERIES_KEYS = (
    "step",
    "time_fs",
    "temperature_K",
    "potential_eV",
    "kinetic_eV",
    "conserved_eV",
    "max_force_eV_A",
    "min_distance_A",
    "volume_A3",
    "pressure_bar",
)


@dataclass
class MDResult:
    """Outcome of :func:`run_md`.

    frames              sampled ``ase.Atoms`` (unwrapped positions A, cell A, momenta, a single-point
                        calculator with energy eV / forces eV/A / stress eV/A^3, info ``time_fs``, ``step``)
    series              per-sample arrays, keys :data:`SERIES_KEYS`: step, time_fs, temperature_K
                        (:func:`kinetic_temperature`, 3N - 3 degrees of freedom), potential_eV, kinetic_eV, conserved_eV (the integrator's conserved quantity),
                        max_force_eV_A, min_distance_A, volume_A3, pressure_bar (virial + kinetic; NaN if the
                        calculator gives no stress)
    stop_reason         "" if all steps ran, else why the run ended early (it never raises for that)
    steps               steps completed
    wall_time_s         wall time of the loop, s
    cpu_time_s          CPU time of the process during the loop, s
    neighbour_list_builds  Verlet list builds during the run (0 for calculators without one)
    """

    frames: list
    series: dict
    stop_reason: str
    steps: int
    wall_time_s: float
    cpu_time_s: float
    neighbour_list_builds: int
    ensemble: str = ""
    timestep_fs: float = 0.0

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.wall_time_s if self.wall_time_s > 0 else float("nan")


class StopRun(Exception):
    """Raised by an observer to end the run; ``reason`` becomes :attr:`MDResult.stop_reason`."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def kinetic_temperature(atoms) -> float:
    """Instantaneous temperature, K, of atoms with zero total momentum: 2 E_kin / ((3N - 3) kB)."""
    dof = 3 * len(atoms) - 3
    return 2.0 * atoms.get_kinetic_energy() / (max(dof, 1) * units.kB)


def _fix_thermostat_dof(dyn, temperature_K, thermostat_damping_fs, chain_length, chain_loops) -> None:
    """Give the Nose-Hoover chain of ASE's ``dyn`` 3N - 3 degrees of freedom instead of 3N.

    ASE's ``NoseHooverChainThermostat`` counts ``3 * num_atoms_global`` degrees of freedom (its target
    kinetic energy, the first chain mass and the thermostat energy); built for N - 1 atoms it counts 3N - 3
    and is otherwise the same (the masses are the atoms' own).  A new thermostat starts from rest, as
    ``dyn``'s own has not yet run.
    """
    from ase.md.nose_hoover_chain import NoseHooverChainThermostat

    dyn._thermostat = NoseHooverChainThermostat(
        num_atoms_global=dyn.atoms.get_global_number_of_atoms() - 1, masses=dyn.masses,
        temperature_K=temperature_K, tdamp=thermostat_damping_fs * units.fs, tchain=chain_length,
        tloop=chain_loops,
    )


def minimum_distance(atoms, search_A: float = 4.0) -> float:
    """Smallest interatomic distance (A) under periodic boundaries (ASE's neighbour list, ``search_A`` A
    search; ``search_A`` if no pair is closer)."""
    from ase.neighborlist import neighbor_list

    d = neighbor_list("d", atoms, search_A)
    return float(d.min()) if len(d) else search_A


def _min_distance(atoms) -> float:
    """The calculator's smallest pair distance if it reports one (SchNetCalculator), else ASE's search."""
    value = getattr(atoms.calc, "results", {}).get("min_distance_A")
    return float(value) if value is not None else minimum_distance(atoms)


class StabilityCheck:
    """Observer: raise :class:`StopRun` at the first step with non-finite energy, forces or momenta, a force
    above ``max_force_eV_A`` or a pair closer than ``min_distance_A`` (None or 0: that limit unchecked)."""

    def __init__(self, atoms, max_force_eV_A: float | None, min_distance_A: float | None):
        self.atoms, self.max_force_eV_A, self.min_distance_A = atoms, max_force_eV_A, min_distance_A

    def __call__(self) -> None:
        energy = self.atoms.get_potential_energy()
        max_force = float(np.linalg.norm(self.atoms.get_forces(), axis=1).max())
        if not (math.isfinite(energy) and math.isfinite(max_force) and np.isfinite(self.atoms.get_momenta()).all()):
            raise StopRun(STOP_NONFINITE)
        if self.max_force_eV_A and max_force > self.max_force_eV_A:
            raise StopRun(STOP_FORCE)
        if self.min_distance_A and _min_distance(self.atoms) < self.min_distance_A:
            raise StopRun(STOP_DISTANCE)


class Sampler:
    """Observer: record the series and a frame of the current step, then ask ``callback(frame, values)``
    (a truthy answer stops the run; a string becomes the reason)."""

    def __init__(self, dyn, timestep_fs: float, conserved: Callable[[], float], callback: Callable | None = None):
        self.dyn, self.atoms = dyn, dyn.atoms
        self.timestep_fs, self.conserved, self.callback = timestep_fs, conserved, callback
        self.series = {key: [] for key in SERIES_KEYS}
        self.frames: list[Atoms] = []
        self.last_step = None

    def _pressure_bar(self) -> float:
        if not self.atoms.pbc.all():
            return float("nan")
        try:
            stress = self.atoms.get_stress(voigt=False, include_ideal_gas=True)
        except (PropertyNotImplementedError, NotImplementedError):
            return float("nan")
        return float(-np.trace(stress) / 3.0 / units.bar)

    def sample(self) -> None:
        """Record the current step (once)."""
        atoms, step = self.atoms, self.dyn.nsteps
        if step == self.last_step:
            return
        self.last_step = step
        forces = atoms.get_forces()
        pressure = self._pressure_bar()  # may evaluate the stress: read the energy after it
        potential, kinetic = atoms.get_potential_energy(), atoms.get_kinetic_energy()
        values = {
            "step": step,
            "time_fs": step * self.timestep_fs,
            "temperature_K": kinetic_temperature(atoms),
            "potential_eV": potential,
            "kinetic_eV": kinetic,
            "conserved_eV": self.conserved(),
            "max_force_eV_A": float(np.linalg.norm(forces, axis=1).max()),
            "min_distance_A": _min_distance(atoms),
            "volume_A3": atoms.get_volume() if atoms.pbc.all() else 0.0,
            "pressure_bar": pressure,
        }
        for key in SERIES_KEYS:
            self.series[key].append(values[key])
        frame = atoms.copy()
        results = {"energy": potential, "forces": forces.copy()}
        stress = atoms.calc.results.get("stress")
        if stress is not None:
            results["stress"] = np.array(stress)
        frame.calc = SinglePointCalculator(frame, **results)
        frame.info["time_fs"], frame.info["step"] = values["time_fs"], step
        self.frames.append(frame)
        self.values = values

    def __call__(self) -> None:
        self.sample()
        if self.callback is not None:
            answer = self.callback(self.frames[-1], self.values)
            if answer:
                raise StopRun(answer if isinstance(answer, str) else STOP_CALLBACK)


def make_integrator(atoms, ensemble: str, timestep_fs: float, temperature_K: float | None,
                    thermostat_damping_fs: float = 100.0, pressure_bar: float = 1.0,
                    barostat_damping_fs: float = 1000.0, chain_length: int = 3, chain_loops: int = 1):
    """ASE's integrator for ``ensemble`` ("nve", "nvt", "npt") and its conserved quantity (a callable, eV)."""
    from ase.md.nose_hoover_chain import IsotropicMTKNPT, NoseHooverChainNVT
    from ase.md.verlet import VelocityVerlet

    dt = timestep_fs * units.fs
    if ensemble == "nve":
        dyn = VelocityVerlet(atoms, timestep=dt)
        return dyn, lambda: atoms.get_potential_energy() + atoms.get_kinetic_energy()
    chain = dict(temperature_K=temperature_K, tdamp=thermostat_damping_fs * units.fs, tchain=chain_length,
                 tloop=chain_loops)
    if ensemble == "nvt":
        dyn = NoseHooverChainNVT(atoms, timestep=dt, **chain)
    else:
        dyn = IsotropicMTKNPT(atoms, timestep=dt, pressure_au=pressure_bar * units.bar,
                              pdamp=barostat_damping_fs * units.fs, pchain=chain_length, ploop=chain_loops, **chain)
    _fix_thermostat_dof(dyn, temperature_K, thermostat_damping_fs, chain_length, chain_loops)
    return dyn, dyn.get_conserved_energy


def run_md(
    atoms: Atoms,
    calculator=None,
    ensemble: str = "nvt",
    steps: int = 1000,
    timestep_fs: float = 2.0,
    temperature_K: float | None = None,
    thermostat_damping_fs: float = 100.0,
    pressure_bar: float = 1.0,
    barostat_damping_fs: float = 1000.0,
    sample_every: int = 10,
    callback: Callable | None = None,
    seed: int | None = None,
    max_force_eV_A: float | None = None,
    min_distance_A: float | None = None,
    chain_length: int = 3,
    chain_loops: int = 1,
    progress_label: str | None = None,
) -> MDResult:
    """Integrate ``steps`` steps of ``timestep_fs`` fs of ``atoms`` (moved in place) and return the samples.

    calculator             attached to ``atoms`` (None: keep the one it has)
    ensemble               "nve" (velocity Verlet), "nvt" (Nose-Hoover chain) or "npt" (isotropic MTK)
    temperature_K          target temperature, K (NVT, NPT); with ``seed`` also the temperature of the
                           initial Maxwell-Boltzmann velocities (any ensemble)
    thermostat_damping_fs  Nose-Hoover chain time constant, fs (000 uses 100 fs)
    pressure_bar           target pressure (NPT), bar
    barostat_damping_fs    barostat time constant (NPT), fs
    sample_every           record a sample every this many steps (and at step 0)
    callback               ``callback(frame, sample) -> bool | str | None`` at every sample; a truthy value
                           stops the run (a string becomes the stop reason)
    seed                   draw new velocities (zero total momentum); None keeps the atoms' momenta
    max_force_eV_A, min_distance_A
                           checked at every step: the run stops (without raising) at the first step with
                           non-finite values, a force above the first, or a pair closer than the second
                           (None or 0: not checked; the workflow passes ``validation.stability``'s); that
                           step is sampled
    chain_length, chain_loops
                           Nose-Hoover chain length and sub-step loops (thermostat and barostat)

    Thermostat and barostat variables start from zero at every call (a new ASE integrator).
    """
    ensemble = ensemble.lower()
    if ensemble not in ("nve", "nvt", "npt"):
        raise ValueError(f"ensemble must be 'nve', 'nvt' or 'npt', got {ensemble!r}")
    if ensemble != "nve" and temperature_K is None:
        raise ValueError(f"{ensemble.upper()} needs temperature_K")
    if ensemble == "npt" and not atoms.pbc.all():
        raise ValueError("NPT needs a periodic cell")
    if calculator is not None:
        atoms.calc = calculator
    if seed is not None:
        from ase.md.velocitydistribution import Stationary, thermalize_momenta

        if temperature_K is None:
            raise ValueError("drawing velocities (seed) needs temperature_K")
        thermalize_momenta(atoms, temperature_K, rng=np.random.default_rng(seed))
        Stationary(atoms)
    steps, sample_every = int(steps), max(1, int(sample_every))
    dyn, conserved = make_integrator(atoms, ensemble, timestep_fs, temperature_K, thermostat_damping_fs,
                                     pressure_bar, barostat_damping_fs, chain_length, chain_loops)
    sampler = Sampler(dyn, timestep_fs, conserved, callback)
    dyn.attach(StabilityCheck(atoms, max_force_eV_A, min_distance_A), interval=1)
    dyn.attach(sampler, interval=sample_every)
    if progress_label:
        from .progress import Progress

        progress = Progress(progress_label, steps)
        dyn.attach(lambda: progress(dyn.nsteps, note=f"T = {kinetic_temperature(atoms):.0f} K"), interval=1)

    stop = ""
    try:
        atoms.get_forces()  # the first evaluation (and the calculator's set-up) is not part of the timing
    except Exception as err:  # noqa: BLE001 - a labeller's single point can fail on the start (recorded)
        stop = f"integration failed: {err}"
    neighbours = getattr(atoms.calc, "neighbours", None)
    builds0 = getattr(neighbours, "builds", 0)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    try:
        for _ in ([] if stop else dyn.irun(steps)):
            pass
    except StopRun as halt:
        stop = halt.reason
        sampler.sample()
    except Exception as err:  # noqa: BLE001 - a model far outside its data can break the integration
        stop = f"integration failed: {err}"
        dyn.nsteps += 1  # the failed step counts, as the time it reached
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return MDResult(
        frames=sampler.frames,
        series={k: np.asarray(v, dtype=float) for k, v in sampler.series.items()},
        stop_reason=stop,
        steps=dyn.nsteps,
        wall_time_s=wall,
        cpu_time_s=cpu,
        neighbour_list_builds=getattr(neighbours, "builds", 0) - builds0,
        ensemble=ensemble,
        timestep_fs=float(timestep_fs),
    )
