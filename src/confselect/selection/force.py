"""Force-based selection: diversity of the per-atom force magnitudes."""

import numpy as np

from .base import PoolFeatures, Selector
from .distances import farthest_point_order
from .fps import check_start, first_pick


class ForceSelector(Selector):
    """Farthest-point selection on the distribution of per-atom force magnitudes |F_i| (eV/A) per frame.

    Each frame becomes its sorted |F_i| divided by sqrt(n_atoms): Euclidean distance between two frames is
    then the 2-Wasserstein distance (eV/A) between their force-magnitude distributions, independent of atom
    order and of the orientation of the cell. Starting from the frame farthest from the pool mean (often
    the one with the largest forces), farthest-point sampling takes the strongest-force frames early (their
    largest entries dominate the distance) and then fills the range down to the quietest frames, so the
    selection covers the force range rather than only its high tail.

    Parameters
    ----------
    seed : used only by ``start="random"``.
    start : ``"farthest"`` (default) or ``"random"`` (seeded), as in :class:`FPSSelector`.
    """

    name = "force"
    requires = ("forces",)

    def __init__(self, seed: int = 0, start: str = "farthest"):
        super().__init__(seed)
        self.start = check_start(start)

    def _select(self, pool: PoolFeatures, n: int) -> np.ndarray:
        f = np.asarray(pool.forces, dtype=np.float64)
        magnitudes = np.linalg.norm(f.reshape(len(f), -1, 3), axis=2)
        quantiles = np.sort(magnitudes, axis=1) / np.sqrt(magnitudes.shape[1])
        return farthest_point_order(quantiles, n, first=first_pick(quantiles, self.start, self.seed))
