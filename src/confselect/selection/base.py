"""The interface every selection method shares.

A selector is a small estimator-like object: configure it in ``__init__`` (seed and method knobs),
call :meth:`Selector.select` with the pool and a count, get back an *ordered*, duplicate-free array of
pool indices.  The order is part of the contract: the training set of size ``m <= n`` is the first
``m`` entries ("anytime" selection), so one selection serves every training-set size of a sweep.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np


class SelectionError(ValueError):
    """A selection cannot be made with the given pool or count (message names the cause)."""


@dataclass
class PoolFeatures:
    """What a selector may look at, one entry per pool frame (index = frame identity).

    descriptors     (n_frames, d) float array, standardised per-frame descriptors
    energies        (n_frames,) total potential energy per frame, eV
    atomic_energies (n_frames, n_atoms) per-atom potential energies, eV
    forces          (n_frames, n_atoms, 3) forces, eV/A
    times           (n_frames,) simulation time of each frame, fs (trajectory order)

    Fields a method does not need may be ``None``.
    """

    descriptors: np.ndarray | None = None
    energies: np.ndarray | None = None
    atomic_energies: np.ndarray | None = None
    forces: np.ndarray | None = None
    times: np.ndarray | None = None

    def __len__(self) -> int:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                return len(value)
        return 0

    @classmethod
    def load(cls, path) -> "PoolFeatures":
        """Read the ``.npz`` written by :meth:`save` (missing fields stay ``None``)."""
        with np.load(path) as data:
            return cls(**{f.name: (data[f.name] if f.name in data.files else None) for f in fields(cls)})

    def save(self, path) -> None:
        arrays = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
        np.savez(path, **arrays)


class Selector:
    """Base class: subclasses set ``name``, ``requires`` and implement ``_select``."""

    name: ClassVar[str] = ""
    #: PoolFeatures fields this method reads; a missing one stops with a clear message.
    requires: ClassVar[tuple[str, ...]] = ("descriptors",)
    #: True if ``select(pool, m)`` equals ``select(pool, n)[:m]`` for every m <= n (greedy methods).
    #: Either way the workflow selects once at the largest size and trains on prefixes.
    prefix_consistent: ClassVar[bool] = True
    #: True for a method the workflow runs as iterations that label as they go (``al_qbc``), not by ``select``
    iterative: ClassVar[bool] = False

    def __init__(self, seed: int = 0):
        self.seed = int(seed)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"

    def select(self, pool: PoolFeatures, n: int) -> np.ndarray:
        """Return ``n`` distinct pool indices, most valuable first."""
        size = len(pool)
        if isinstance(n, bool) or int(n) != n:
            raise SelectionError(f"{self.name}: n must be an integer, got {n!r}")
        n = int(n)
        if n < 1:
            raise SelectionError(f"{self.name}: n must be at least 1, got {n}")
        if n > size:
            raise SelectionError(f"{self.name}: cannot select {n} frames from a pool of {size}")
        for field in self.requires:
            if getattr(pool, field) is None:
                raise SelectionError(
                    f"{self.name}: needs pool '{field}', which this pool does not provide"
                )
        order = np.asarray(self._select(pool, n), dtype=np.int64)
        if order.shape != (n,) or len(np.unique(order)) != n or order.min() < 0 or order.max() >= size:
            raise AssertionError(f"{self.name}: internal error, invalid selection {order!r}")
        return order

    def _select(self, pool: PoolFeatures, n: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError
