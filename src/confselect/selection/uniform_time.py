"""Uniform-in-time selection: frames evenly spread along the trajectory."""

import numpy as np

from .base import PoolFeatures, Selector
from .distances import farthest_point_order_1d


class UniformTimeSelector(Selector):
    """Frames evenly spaced in simulation time, in a coarse-to-fine order.

    The position of a frame is its ``times`` entry (fs) when the pool has times, else its index (frames
    are then taken to be in trajectory order). The order is farthest-point in 1-D: the first frame, the
    last frame, then the frame nearest the middle of the longest remaining time interval between picks,
    and so on (ties: the earlier frame). On an evenly sampled trajectory this is a van der Corput-like
    bisection: 2^k + 1 picks are exactly evenly spaced, and any prefix leaves no interval longer than
    twice the even spacing. Deterministic; the seed is not used.
    """

    name = "uniform_time"
    requires = ()

    def _select(self, pool: PoolFeatures, n: int) -> np.ndarray:
        times = np.arange(len(pool), dtype=np.float64) if pool.times is None else pool.times
        return farthest_point_order_1d(times, n)
