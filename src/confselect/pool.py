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


def read_frames(path, indices=None):
    """Frames of an extxyz trajectory (all, or the given indices in the given order)."""
    from ase.io import read

    frames = read(path, index=":", format="extxyz")
    if indices is None:
        return frames
    return [frames[i] for i in indices]


def pool_features(frames) -> PoolFeatures:
    """Energies (eV), per-atom energies (eV), forces (eV/A) and times (fs) of the pool frames.

    Per-atom arrays are stacked, so all pool frames must hold the same number of atoms (true of an MD pool).
    """
    energies = np.array([a.get_potential_energy() for a in frames])
    forces = np.stack([a.get_forces() for a in frames]).astype(np.float32)
    try:
        atomic = np.stack([a.get_potential_energies() for a in frames]).astype(np.float32)
    except Exception:  # a pool from a code without per-atom energies: methods needing them say so
        atomic = None
    times = np.array([a.info.get("time_fs", i) for i, a in enumerate(frames)], dtype=float)
    return PoolFeatures(energies=energies, atomic_energies=atomic, forces=forces, times=times)
