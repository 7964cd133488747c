"""Pool and held-out frames: the union of named generators, written as extended XYZ.

A generator (``pool.<name>``, kind and settings) is classical MD over a temperature ramp (``md_ramp``) or a
static transformation of the system's starting structure (``volume_scan``, ``strain``, ``rattle``,
``normal_modes``, :mod:`confselect.structure_generators`) labelled by the classical teacher. Every frame
records its generator (``info["generator"]``). A pool recipe is the concatenation of its generators' files
in recipe order; a frame's index in the recipe's file is its identity everywhere downstream.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from .classical import run_classical_md, teacher_calculator
from .progress import Progress
from .selection.base import PoolFeatures
from .structures import build_structure


def write_generator_frames(system: dict, name: str, settings: dict, path) -> int:
    """Make generator ``name``'s frames (teacher energies, forces and per-atom energies) and write them to
    ``path``; return the frame count. The file appears under its final name only when it is complete."""
    from ase.io import write

    from .pool_config import generator_frames

    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    progress = Progress(f"{name} ({settings['kind']}) -> {path.name}", generator_frames(settings))
    with open(tmp, "w") as handle:
        writer = _FrameWriter(handle, name, progress, write)
        if settings["kind"] == "md_ramp":
            run_classical_md(system, settings, settings["seed"], writer)
        else:
            calc = teacher_calculator(system, keep_alive=True)
            for atoms in static_frames(system, settings, calc):
                writer(label_with(atoms, calc))
    os.replace(tmp, path)
    return writer.count


class _FrameWriter:
    """Streams frames to an open extxyz file, recording their generator and reporting progress."""

    def __init__(self, handle, name: str, progress, write):
        self.handle, self.name, self.progress, self.write = handle, name, progress, write
        self.count = 0

    def __call__(self, atoms) -> None:
        atoms.info["generator"] = self.name
        self.write(self.handle, atoms, format="extxyz")
        self.count += 1
        note = f"T = {atoms.info['temperature_K']:.0f} K" if "temperature_K" in atoms.info else None
        self.progress(self.count, note=note)


def static_frames(system: dict, settings: dict, calc):
    """The frames of a static generator, from the system's starting structure (no calculator attached)."""
    from . import structure_generators as make

    start = build_structure(system, settings.get("seed", 0))
    kind = settings["kind"]
    if kind == "volume_scan":
        return make.volume_scan(start, tuple(settings["linear_strain_range"]), settings["n_frames"])
    if kind == "strain":
        return make.strain(start, settings["max_normal_strain"], settings["max_shear_strain"], settings["n_frames"],
                           settings["seed"])
    if kind == "rattle":
        return make.rattle(start, tuple(settings["amplitudes_A"]), settings["n_per_amplitude"], settings["seed"],
                           settings["max_strain"])
    if kind == "normal_modes":
        return make.normal_modes(start, calc, settings["temperature_K"], settings["n_frames"], settings["seed"],
                                 settings["delta_A"])
    raise ValueError(f"unknown generator kind {kind!r}")


def label_with(atoms, calc):
    """``atoms`` with the teacher's energy (eV), forces (eV/A), per-atom energies (eV) and stress (eV/A^3)
    as a single-point result."""
    from ase.calculators.singlepoint import SinglePointCalculator

    work = atoms.copy()
    work.calc = calc
    results = {"energy": work.get_potential_energy(), "forces": work.get_forces(),
               "energies": work.get_potential_energies(), "stress": work.get_stress()}
    labelled = atoms.copy()
    labelled.calc = SinglePointCalculator(labelled, **results)
    return labelled


def concatenate(paths, output) -> None:
    """Concatenate extxyz files (a pool recipe's generators, the test set's) into ``output`` in order."""
    output = Path(output)
    tmp = output.with_name(output.name + ".part")
    with open(tmp, "wb") as out:
        for path in paths:
            with open(path, "rb") as handle:
                shutil.copyfileobj(handle, out)
    os.replace(tmp, output)


#: Up to this many indices, :func:`read_frames` reads frame by frame: ASE then only scans the frame headers up
#: to each index, and a scan of the demo pool (500 frames of 64 ions) took 1/14 of parsing it whole (8 reads
#: of single frames 0.06 s, the whole file 0.22 s), which a label batch of a 10,000-frame pool also gains.
FEW_FRAMES = 16


def read_frames(path, indices=None):
    """Frames of an extxyz trajectory (all, or the given indices in the given order)."""
    from ase.io import read

    if indices is not None and len(indices) <= FEW_FRAMES:
        return [read(path, index=int(i), format="extxyz") for i in indices]
    frames = read(path, index=":", format="extxyz")
    if indices is None:
        return frames
    return [frames[i] for i in indices]


def pool_features(frames) -> PoolFeatures:
    """Energies (eV), per-atom energies (eV), forces (eV/A) and times (fs) of the pool frames.

    ``frames`` may be a generator (``ase.io.iread``): only the arrays are kept, not the Atoms.  Per-atom
    arrays are stacked, so all pool frames must hold the same number of atoms (true of an MD pool).
    """
    energies, forces, atomic, times = [], [], [], []
    for i, atoms in enumerate(frames):
        energies.append(atoms.get_potential_energy())
        forces.append(atoms.get_forces().astype(np.float32))
        if atomic is not None:
            try:
                atomic.append(atoms.get_potential_energies().astype(np.float32))
            except Exception:  # a pool without per-atom energies: the methods needing them say so
                atomic = None
        times.append(atoms.info.get("time_fs", float(i)))
    sizes = {len(f) for f in forces}
    if len(sizes) > 1:
        raise ValueError(f"pool frames differ in atom count ({sorted(sizes)}); a pool is one MD trajectory")
    return PoolFeatures(
        energies=np.asarray(energies),
        forces=np.stack(forces),
        atomic_energies=np.stack(atomic) if atomic else None,
        times=np.asarray(times, dtype=float),
    )


def count_frames(path) -> int:
    """Number of frames in an extxyz file, from its atom-count lines (no parsing of the frames)."""
    count = 0
    with open(path) as handle:
        while line := handle.readline():
            if not line.strip():
                continue
            n_atoms = int(line)
            for _ in range(n_atoms + 1):
                handle.readline()
            count += 1
    return count
