"""D-optimal selection: greedy maximisation of the log-determinant of the information matrix."""

import numpy as np

from .base import PoolFeatures, SelectionError, Selector
from .distances import as_float_matrix


class DOptimalSelector(Selector):
    """Greedy D-optimal design on the descriptors (centred on the pool mean).

    With the picks S so far and the ridge-regularised information matrix M_S = lam I + sum_{i in S} x_i x_i^T,
    the next pick maximises the gain log det(M_S + x x^T) - log det(M_S) = log(1 + x^T M_S^{-1} x), i.e.
    the frame whose descriptor is least explained by the picks (largest prediction variance of a linear
    model in the descriptors). The gain is positive for every frame while lam > 0, so log det(M_S)
    increases strictly with every pick, and the method continues past d picks (where an unregularised
    design would be singular). M_S^{-1} is updated by Sherman-Morrison and every frame's variance
    x^T M_S^{-1} x by a rank-1 downdate, one n_frames x d product per pick. Duplicates of a pick have a
    small gain and come late. Deterministic (the seed is not used); ties go to the lowest index.

    Parameters
    ----------
    ridge : lam in units of the mean per-feature variance of the pool (default 1e-3): small against the
        descriptor scale, so the first d picks follow the unregularised design.
    """

    name = "dopt"

    def __init__(self, seed: int = 0, ridge: float = 1e-3):
        super().__init__(seed)
        if not ridge > 0:
            raise SelectionError(f"dopt: ridge must be positive, got {ridge!r}")
        self.ridge = float(ridge)

    def regularisation(self, descriptors) -> float:
        """lam for these descriptors: ``ridge`` times their mean per-feature variance (descriptor units^2)."""
        x = as_float_matrix(descriptors)
        centred = x - x.mean(axis=0, dtype=np.float64).astype(x.dtype)
        variance = float(np.einsum("ij,ij->", centred, centred)) / centred.size
        return self.ridge * (variance if variance > 0 else 1.0)

    def _select(self, pool: PoolFeatures, n: int) -> np.ndarray:
        x = as_float_matrix(pool.descriptors)
        x = x - x.mean(axis=0, dtype=np.float64).astype(x.dtype)
        lam = self.regularisation(x)
        inverse = np.eye(x.shape[1]) / lam  # M^{-1}, float64
        variance = np.einsum("ij,ij->i", x, x).astype(np.float64) / lam  # x^T M^{-1} x
        selected = np.zeros(len(x), dtype=bool)
        order = np.empty(n, dtype=np.int64)
        for t in range(n):
            gains = np.where(selected, -np.inf, variance)
            pick = int(np.argmax(gains))
            order[t] = pick
            selected[pick] = True
            u = inverse @ x[pick].astype(np.float64)  # M^{-1} x_p
            denominator = 1.0 + float(x[pick].astype(np.float64) @ u)
            inverse -= np.outer(u, u) / denominator
            projection = (x @ u.astype(x.dtype)).astype(np.float64)
            variance -= projection**2 / denominator
        return order
