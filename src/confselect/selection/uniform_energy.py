"""Uniform-in-energy selection: even coverage of the total potential-energy distribution."""

import numpy as np

from .base import PoolFeatures, Selector
from .distances import farthest_point_order_1d


class UniformEnergySelector(Selector):
    """Greedy farthest-point selection on the total energy (eV), a 1-D k-centre cover of the energy range.

    Order: the lowest-energy frame, the highest-energy frame, then repeatedly the frame nearest the middle
    of the widest energy gap between picks (ties: lower energy, then lower index). Every prefix spans the
    full energy range and covers it evenly: the largest gap shrinks monotonically, and no prefix of m
    picks leaves a frame farther (in eV) from its nearest pick than twice the best m-frame cover would.
    Unlike equal-count energy bins it does not follow the density of the energy histogram, so rare high-
    and low-energy frames are not under-represented. Deterministic; the seed is not used.
    """

    name = "uniform_energy"
    requires = ("energies",)

    def _select(self, pool: PoolFeatures, n: int) -> np.ndarray:
        return farthest_point_order_1d(pool.energies, n)
