"""Farthest-point sampling (greedy k-centre) in descriptor space."""

import numpy as np

from .base import PoolFeatures, SelectionError, Selector
from .distances import as_float_matrix, farthest_point_order

STARTS = ("farthest", "random")


def check_start(start: str) -> str:
    """``start`` if it names a known first-pick rule, else a :class:`SelectionError`."""
    if start not in STARTS:
        raise SelectionError(f"unknown start {start!r}; choose one of {STARTS}")
    return start


def first_pick(points, start: str, seed: int) -> int:
    """Index of the first FPS pick: the row farthest from the mean row, or a seeded random row."""
    if start == "farthest":
        x = as_float_matrix(points)
        centred = x - x.mean(axis=0, dtype=np.float64).astype(x.dtype)
        return int(np.argmax(np.einsum("ij,ij->i", centred, centred)))
    check_start(start)
    return int(np.random.default_rng(seed).integers(len(points)))


class FPSSelector(Selector):
    """Greedy farthest-point sampling: each pick is the frame farthest (Euclidean, in descriptor units)
    from its nearest earlier pick.

    Any prefix of m picks is a 2-approximation of the optimal m-centre cover of the pool (the largest
    distance from a pool frame to its nearest pick is at most twice the best achievable). Duplicate frames
    sit at distance 0 and are taken only after every distinct frame.

    Parameters
    ----------
    seed : used only by ``start="random"``.
    start : ``"farthest"`` (default: the frame farthest from the descriptor mean, deterministic) or
        ``"random"`` (a seeded random frame).
    """

    name = "fps"

    def __init__(self, seed: int = 0, start: str = "farthest"):
        super().__init__(seed)
        self.start = check_start(start)

    def _select(self, pool: PoolFeatures, n: int) -> np.ndarray:
        x = pool.descriptors
        return farthest_point_order(x, n, first=first_pick(x, self.start, self.seed))
