"""The selection pool and the held-out test set: classical MD trajectories written as extended XYZ.

A frame's index in the pool file is the identity of that configuration everywhere downstream.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .classical import run_classical_md
from .progress import Progress
from .selection.base import PoolFeatures


def write_md_trajectory(system: dict, protocol: dict, seed: int, path) -> int:
    """Run the classical MD protocol and stream its frames to ``path`` (extxyz); return the frame count.

    The file appears under its final name only when the run is complete (written to ``path.part`` first).
    """
    from ase.io import write

    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    n_frames = int(protocol["ramp_fs"] // protocol["frame_interval_fs"])
    progress = Progress(f"classical MD -> {path.name}", n_frames)
    count = 0
    with open(tmp, "w") as handle:

        def on_frame(atoms):
            nonlocal count
            write(handle, atoms, format="extxyz")
            count += 1

        def report(done, total, frame):
            progress(done, note=f"T = {frame.info['temperature_K']:.0f} K")

        run_classical_md(system, protocol, seed, on_frame, progress=report)
    os.replace(tmp, path)
    return count


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
