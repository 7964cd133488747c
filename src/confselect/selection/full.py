"""The whole pool: the upper-bound arm (``sweep.full``), not a selection strategy.

A model trained on every pool frame (or on a configured large n) under the same protocol as the selected
ones tells the user whether a failure is the selection's fault or the model's: if even the full pool does
not reach a target, no selection of it will.
"""

import numpy as np

from ..upper_bound import FULL_ARM
from .base import PoolFeatures, Selector


class FullPoolSelector(Selector):
    """Every pool frame, in a seeded random order (its prefixes are random subsets, so a configured n below
    the pool size is a large random training set)."""

    name = FULL_ARM
    requires = ()

    def _select(self, pool: PoolFeatures, n: int) -> np.ndarray:
        return np.random.default_rng(self.seed).permutation(len(pool))[:n]
