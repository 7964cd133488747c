"""Uniformly random selection: the baseline every other method must beat."""

import numpy as np

from .base import PoolFeatures, Selector


class RandomSelector(Selector):
    """A seeded random permutation of the pool; its prefixes are random subsets."""

    name = "random"
    requires = ()

    def _select(self, pool: PoolFeatures, n: int) -> np.ndarray:
        return np.random.default_rng(self.seed).permutation(len(pool))[:n]
