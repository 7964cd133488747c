"""Atomic (local) energy selection: diversity of the per-atom energy distributions."""

import numpy as np

from .base import PoolFeatures, Selector
from .distances import farthest_point_order
from .fps import check_start, first_pick


class AtomicEnergySelector(Selector):
    """Farthest-point selection on the distribution of per-atom energies of each frame.

    Each frame becomes its sorted per-atom energies divided by sqrt(n_atoms). The Euclidean distance
    between two such vectors is the 2-Wasserstein distance (eV) between the two frames' distributions of
    local energy, invariant to atom order, so farthest-point sampling picks frames whose local-energy
    distributions differ most: the tails (the most strained and the most relaxed local environments) come
    first, then the frames that fill the gaps between them.

    Parameters
    ----------
    seed : used only by ``start="random"``.
    start : ``"farthest"`` (default) starts from the frame whose distribution is farthest from the pool
        mean; ``"random"`` starts from a seeded random frame.
    """

    name = "atomic_energy"
    requires = ("atomic_energies",)

    def __init__(self, seed: int = 0, start: str = "farthest"):
        super().__init__(seed)
        self.start = check_start(start)

    def _select(self, pool: PoolFeatures, n: int) -> np.ndarray:
        e = np.asarray(pool.atomic_energies, dtype=np.float64)
        quantiles = np.sort(e.reshape(len(e), -1), axis=1) / np.sqrt(e[0].size)
        return farthest_point_order(quantiles, n, first=first_pick(quantiles, self.start, self.seed))
