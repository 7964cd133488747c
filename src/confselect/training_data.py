"""An in-memory SchNetPack training set: every frame's inputs and neighbour list built once, batches by
concatenation.

SchNetPack's standard route (``ASEAtomsData`` + ``AtomsLoader``) reads each frame back from an ASE
SQLite database and recomputes its neighbour list with the transform at *every* gradient step, although a
training frame never moves.  Here each frame is converted once into the tensors SchNetPack's model reads
(``_atomic_numbers``, ``_positions``, ``_cell``, ``_pbc``, ``_n_atoms``, ``_idx_i``, ``_idx_j``,
``_offsets``, with the pair convention of its ``PairwiseDistances``: r_ij = R[j] - R[i] + offset) and a
batch is a concatenation with shifted pair indices.  Measured on the demo system (64 ions, 5 A cutoff,
batch 4, one thread), with the same full-list SchNet forward on both sides: 40 ms per step through
SchNetPack's loader, transforms and Lightning against 28 ms from memory (``benchmarks/bench_training.py``
gives the whole trainer's figure).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class FrameTensors:
    """One frame as SchNetPack model inputs (float32) plus its targets (energy with the offset removed)."""

    numbers: torch.Tensor  # (N,) int64
    positions: torch.Tensor  # (N, 3) A
    cell: torch.Tensor  # (3, 3) A
    pbc: torch.Tensor  # (3,) bool
    idx_i: torch.Tensor  # (P,) int64, full pair list
    idx_j: torch.Tensor  # (P,) int64
    offsets: torch.Tensor  # (P, 3) A
    energy: torch.Tensor  # (1,) eV, minus mean_per_atom * N
    forces: torch.Tensor  # (N, 3) eV/A
    pair_features: dict = field(default_factory=dict)  # name -> (P, ...) tensor, concatenated in batches


def neighbour_pairs(atoms, cutoff_A: float, full_list: bool = True):
    """Pairs within ``cutoff_A``: ``i``, ``j`` and offsets (A) with r_ij = R[j] - R[i] + offset; the full
    list has every pair both ways, the half list each unordered pair (periodic images included) once.

    vesin, the fastest periodic neighbour list measured here (1.2 ms for 64 atoms against 1.6 ms for
    matscipy and 15 ms for ASE, ../shared/ENVIRONMENT.md); non-periodic frames get a zero box.
    """
    import vesin

    periodic = bool(np.all(atoms.pbc))
    if np.any(atoms.pbc) and not periodic:
        raise ValueError(f"mixed periodicity {atoms.pbc} is not supported (all or none)")
    box = atoms.cell.array if periodic else np.zeros((3, 3))
    i, j, shifts = vesin.NeighborList(cutoff=float(cutoff_A), full_list=full_list).compute(
        points=atoms.get_positions(), box=box, periodic=periodic, quantities="ijS"
    )
    offsets = shifts.astype(np.float64) @ atoms.cell.array if periodic else np.zeros((len(i), 3))
    return i.astype(np.int64), j.astype(np.int64), offsets


def frame_tensors(atoms, cutoff_A: float, mean_energy_per_atom: float, full_list: bool = True) -> FrameTensors:
    """Model inputs and targets of one labelled frame (energy eV, forces eV/A from its calculator)."""
    i, j, offsets = neighbour_pairs(atoms, cutoff_A, full_list)
    energy = atoms.get_potential_energy() - mean_energy_per_atom * len(atoms)
    return FrameTensors(
        numbers=torch.from_numpy(atoms.get_atomic_numbers().astype(np.int64)),
        positions=torch.from_numpy(atoms.get_positions()).float(),
        cell=torch.from_numpy(atoms.cell.array).float(),
        pbc=torch.from_numpy(np.asarray(atoms.pbc, dtype=bool)),
        idx_i=torch.from_numpy(i),
        idx_j=torch.from_numpy(j),
        offsets=torch.from_numpy(offsets).float(),
        energy=torch.tensor([energy], dtype=torch.float32),
        forces=torch.from_numpy(atoms.get_forces()).float(),
    )


class InMemoryDataset:
    """Labelled frames as prepared tensors; :meth:`batch` concatenates any subset into one model input.

    ``full_list=False`` stores half pair lists (for :class:`confselect.schnet_halflist.HalfListSchNet`).
    ``baseline(inputs) -> (energy, forces) | None``, if given, is evaluated once per frame on its full-list
    inputs and subtracted from the targets (a fixed, untrained energy term such as the ZBL prior).
    ``pair_features(inputs) -> {name: (P, ...) tensor}``, if given, is evaluated once per frame on its own
    pair list and stored; batches carry the concatenated tensors under those names.
    """

    def __init__(self, frames, cutoff_A: float, mean_energy_per_atom: float, device: str = "cpu",
                 full_list: bool = True, baseline=None, pair_features=None):
        if not frames:
            raise ValueError("no frames")
        self.cutoff_A = float(cutoff_A)
        self.mean_energy_per_atom = float(mean_energy_per_atom)
        self.device = device
        self.full_list = full_list
        self.frames = []
        for atoms in frames:
            frame = frame_tensors(atoms, cutoff_A, mean_energy_per_atom, full_list)
            if baseline is not None:
                full = frame if full_list else frame_tensors(atoms, cutoff_A, mean_energy_per_atom, True)
                fixed = baseline(_batch([full], "cpu")[0])
                if fixed is not None:
                    frame.energy = frame.energy - fixed[0].reshape(1).to(frame.energy.dtype)
                    frame.forces = frame.forces - fixed[1].to(frame.forces.dtype)
            if pair_features is not None:
                frame.pair_features = pair_features(_batch([frame], "cpu")[0])
            self.frames.append(_to(frame, device))

    def __len__(self) -> int:
        return len(self.frames)

    def batch(self, indices) -> tuple[dict, dict]:
        """(inputs, targets) for the frames ``indices``, as SchNetPack's collate would build them."""
        return _batch([self.frames[int(k)] for k in indices], self.device)


def _batch(chosen, device) -> tuple[dict, dict]:
    n_atoms = torch.tensor([len(f.numbers) for f in chosen], device=device)
    first_atom = torch.cumsum(n_atoms, 0) - n_atoms
    n_pairs = torch.tensor([len(f.idx_i) for f in chosen], device=device)
    shift = torch.repeat_interleave(first_atom, n_pairs)
    inputs = {
        "_atomic_numbers": torch.cat([f.numbers for f in chosen]),
        # a fresh tensor per batch: the model sets requires_grad on it for the forces
        "_positions": torch.cat([f.positions for f in chosen]),
        "_cell": torch.stack([f.cell for f in chosen]),
        "_pbc": torch.stack([f.pbc for f in chosen]),
        "_n_atoms": n_atoms,
        "_idx": torch.arange(len(chosen), device=device),
        "_idx_m": torch.repeat_interleave(torch.arange(len(chosen), device=device), n_atoms),
        "_idx_i": torch.cat([f.idx_i for f in chosen]) + shift,
        "_idx_j": torch.cat([f.idx_j for f in chosen]) + shift,
        "_offsets": torch.cat([f.offsets for f in chosen]),
    }
    for name in chosen[0].pair_features:
        inputs[name] = torch.cat([f.pair_features[name] for f in chosen])
    targets = {"energy": torch.cat([f.energy for f in chosen]), "forces": torch.cat([f.forces for f in chosen])}
    return inputs, targets


def _to(frame: FrameTensors, device: str) -> FrameTensors:
    if device == "cpu":
        return frame
    moved = {k: v.to(device) for k, v in vars(frame).items() if k != "pair_features"}
    return FrameTensors(**moved, pair_features={k: v.to(device) for k, v in frame.pair_features.items()})
