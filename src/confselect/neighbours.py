"""A Verlet (skin) neighbour list for MD: vesin finds the pairs, torch keeps them on the model's device."""

from __future__ import annotations

import numpy as np
import torch


class VerletNeighbourList:
    """Half list of pairs within ``cutoff_A + skin_A`` (vesin), reused while it provably still holds
    every pair within ``cutoff_A``.

    Pairs are stored as atom indices ``i``, ``j`` and integer cell shifts ``S`` such that
    ``r_ij = R[j] - R[i] + S @ cell`` for the (unwrapped) positions ``R`` the list is used with.
    Positions and cells are float64 tensors on any device; vesin runs on the CPU, so a rebuild copies the
    positions there once and the list back to the device (a rebuild happens every few dozen steps).

    Reuse test.  Write the current cell as ``cell = cell_ref @ F`` and map the positions back to the
    reference cell, ``U = R @ F^-1``.  A pair not in the list had ``d_ref > cutoff + skin``; now
    ``d >= s_min(F) * (d_ref - 2 max|U - R_ref|)`` with ``s_min`` the smallest singular value of ``F``.  The
    list therefore still holds every pair within the cutoff while
    ``s_min * (cutoff + skin - 2 max|U - R_ref|) > cutoff``; for a fixed cell this is the usual
    "no atom moved more than skin/2" rule, in NPT it also accounts for the compression of the cell.  Any
    other change of configuration (a new structure given to a calculator) fails the test and rebuilds.
    With ``skin_A = 0`` the list is rebuilt at every call.
    """

    def __init__(self, cutoff_A: float, skin_A: float, periodic: bool = True):
        import vesin

        if cutoff_A <= 0 or skin_A < 0:
            raise ValueError(f"need cutoff_A > 0 and skin_A >= 0, got {cutoff_A} A and {skin_A} A")
        self.cutoff_A = float(cutoff_A)
        self.skin_A = float(skin_A)
        self.periodic = bool(periodic)
        self._calculator = vesin.NeighborList(cutoff=self.cutoff_A + self.skin_A, full_list=False)
        self.builds = 0
        self.i = self.j = self.shifts = None
        self._positions_ref = self._cell_ref = None

    def build(self, positions: torch.Tensor, cell: torch.Tensor) -> None:
        """Find the pairs within cutoff + skin for float64 ``positions`` (N, 3) and ``cell`` (3, 3), A."""
        i, j, shifts = self._calculator.compute(
            points=positions.detach().cpu().numpy(), box=cell.detach().cpu().numpy(), periodic=self.periodic,
            quantities="ijS",
        )
        device = positions.device
        self.i = torch.from_numpy(i.astype(np.int64)).to(device)
        self.j = torch.from_numpy(j.astype(np.int64)).to(device)
        self.shifts = torch.from_numpy(shifts.astype(np.float64)).to(device)
        self._positions_ref = positions.clone()
        self._cell_ref = cell.clone()
        self.builds += 1

    def still_valid(self, positions: torch.Tensor, cell: torch.Tensor) -> bool:
        """True if every pair within the cutoff is certainly in the list (see the class docstring)."""
        if self.i is None or positions.shape != self._positions_ref.shape or positions.device != self.i.device:
            return False
        if torch.equal(cell, self._cell_ref):
            s_min, mapped = 1.0, positions
        else:
            deformation = torch.linalg.solve(self._cell_ref, cell)
            s_min = float(torch.linalg.svdvals(deformation).min())
            mapped = positions @ torch.linalg.inv(deformation)
        largest = float((mapped - self._positions_ref).square().sum(dim=1).max().sqrt()) if len(mapped) else 0.0
        return s_min * (self.cutoff_A + self.skin_A - 2.0 * largest) > self.cutoff_A

    def update(self, positions: torch.Tensor, cell: torch.Tensor) -> bool:
        """Rebuild the list if needed; return True if it was rebuilt."""
        if self.still_valid(positions, cell):
            return False
        self.build(positions, cell)
        return True

    def pair_vectors(self, positions: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """r_ij = R[j] - R[i] + S @ cell for all listed pairs, A, float64 (P, 3)."""
        return positions.index_select(0, self.j) - positions.index_select(0, self.i) + self.shifts @ cell

    def pairs_within_cutoff(self, positions: torch.Tensor, cell: torch.Tensor):
        """Update the list and return ``(i, j, r_ij, min_distance_A)`` for the pairs closer than the cutoff.

        ``min_distance_A`` is the smallest listed distance (exact when below the cutoff; inf without pairs).
        Pairs between cutoff and cutoff + skin contribute exactly zero to SchNet (its cosine cutoff vanishes
        with its slope), but evaluating them costs time, so they are masked out here.
        """
        self.update(positions, cell)
        r_ij = self.pair_vectors(positions, cell)
        d2 = r_ij.square().sum(dim=1)
        min_distance = float(d2.min().sqrt()) if len(d2) else float("inf")
        keep = torch.nonzero(d2 < self.cutoff_A**2).squeeze(1)
        return self.i.index_select(0, keep), self.j.index_select(0, keep), r_ij.index_select(0, keep), min_distance
