"""CUR selection: frames with the largest statistical leverage, deflated after every pick."""

import numpy as np

from .base import PoolFeatures, Selector
from .distances import as_float_matrix

#: Rows per block for the float64 Gram matrix (bounds the temporary copy to ~8 MB per block).
BLOCK_ROWS = 8192


class CURSelector(Selector):
    """Greedy deterministic CUR row selection with orthogonalisation (as in Imbalzano et al., J. Chem.
    Phys. 148, 241730 (2018), for reference configurations).

    With the descriptors centred on the pool mean and arranged as X (n_frames x d), the frames are the
    columns of X^T, and their leverage comes from the top-k right singular vectors of X^T (the left
    singular vectors U_k of X): l_i = sum_j U_ij^2 = sum_j (x_i . v_j)^2 / s_j^2 over the k largest
    singular values s_j. Each pick is the frame of highest leverage; then every frame's descriptor is
    projected onto the orthogonal complement of the picked frame's residual, X <- X (1 - v v^T), so the
    next pick must bring a new direction. The projection acts on the d x d Gram matrix only (its
    eigenvectors lie in the residual space), so a pick costs one n_frames x d x k product.

    After as many picks as the descriptors have independent directions (at most d) the residual is zero;
    the deflation then restarts from the full descriptors, with earlier picks excluded, so the method
    continues in rounds. Duplicate frames have zero residual and wait for a later round. The method is
    deterministic (the seed is not used).

    Parameters
    ----------
    k : number of singular vectors in the leverage score (default 8).
    rank_tol : eigenvalues below ``rank_tol`` times the largest eigenvalue of the full Gram matrix count as
        zero (default 1e-8).
    """

    name = "cur"

    def __init__(self, seed: int = 0, k: int = 8, rank_tol: float = 1e-8):
        super().__init__(seed)
        self.k = int(k)
        self.rank_tol = float(rank_tol)

    def _select(self, pool: PoolFeatures, n: int) -> np.ndarray:
        x = as_float_matrix(pool.descriptors)
        x = x - x.mean(axis=0, dtype=np.float64).astype(x.dtype)
        gram0 = _gram(x)
        floor = self.rank_tol * max(float(np.linalg.eigvalsh(gram0)[-1]), np.finfo(float).tiny)
        identity = np.eye(x.shape[1])
        projector, gram = identity.copy(), gram0.copy()
        selected = np.zeros(len(x), dtype=bool)
        order = np.empty(n, dtype=np.int64)
        for t in range(n):
            values, vectors = self._top(gram, floor)
            if len(values) == 0:  # residual exhausted: a new round on the full descriptors
                projector, gram = identity.copy(), gram0.copy()
                values, vectors = self._top(gram, floor)
            if len(values):
                scores = ((x @ (projector @ vectors).astype(x.dtype)) ** 2 / values.astype(x.dtype)).sum(1)
            else:  # every frame sits at the mean: nothing to lever, take frames in index order
                scores = np.zeros(len(x), dtype=x.dtype)
            scores[selected] = -np.inf
            pick = int(np.argmax(scores))
            order[t] = pick
            selected[pick] = True
            residual = projector @ x[pick].astype(np.float64)
            norm2 = float(residual @ residual)
            if norm2 > floor / len(x):
                v = residual / np.sqrt(norm2)
                deflate = identity - np.outer(v, v)
                projector = deflate @ projector
                gram = deflate @ gram @ deflate
        return order

    def _top(self, gram, floor) -> tuple[np.ndarray, np.ndarray]:
        """The at most k largest eigenpairs of the Gram matrix above the rank floor."""
        values, vectors = np.linalg.eigh((gram + gram.T) / 2.0)
        keep = np.flatnonzero(values > floor)[::-1][: self.k]
        return values[keep], vectors[:, keep]


def _gram(x) -> np.ndarray:
    """X^T X accumulated in float64, block by block."""
    gram = np.zeros((x.shape[1], x.shape[1]))
    for start in range(0, len(x), BLOCK_ROWS):
        block = x[start : start + BLOCK_ROWS].astype(np.float64)
        gram += block.T @ block
    return gram
