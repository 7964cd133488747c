"""k-means selection: one representative frame per cluster of the descriptor space."""

import numpy as np

from .base import PoolFeatures, Selector
from .distances import as_float_matrix, farthest_point_order, sq_distances_to

class KMeansSelector(Selector):
    """k-means with k = n (seeded k-means++ then Lloyd), then the pool frame nearest each centroid.

    The representative of a cluster is its member closest to the centroid, so representatives are
    distinct frames. If the pool has fewer distinct frames than n (duplicates), some clusters end up
    empty; the selection is then completed by farthest-point sampling from the representatives, which
    takes the remaining duplicates last.

    Order: the representative of the largest cluster first, then a farthest-point pass over the
    representatives (each next one is the representative farthest from those already ordered). This makes
    the order deterministic and spread out, but it is not nested in k: the first m entries of a selection
    with k = n are *not* the k-means selection with k = m (``prefix_consistent = False``). The workflow
    selects once at the largest size and trains on prefixes, which are then FPS-ordered subsets of the
    k = n representatives.

    Parameters
    ----------
    seed : seeds the k-means++ initialisation.
    max_iter : most Lloyd iterations (default 100).
    tol : stop when the summed squared centroid shift falls below ``tol`` times the pool's total
        variance (the sum of the per-feature variances, descriptor units^2; default 1e-3). On the
        benchmark's 10^5 x 128 mixture with k = 256 that took about 30 iterations, after which the
        k-means objective changed by less than 0.1 %.

    Notes
    -----
    The Lloyd loop is written here because scikit-learn is not a dependency and scipy's ``kmeans2`` runs
    a fixed number of iterations with no convergence test and no relocation of empty clusters; the
    assignment step is scipy's ``vq``.
    """

    name = "kmeans"
    prefix_consistent = False

    def __init__(self, seed: int = 0, max_iter: int = 100, tol: float = 1e-3):
        super().__init__(seed)
        self.max_iter = int(max_iter)
        self.tol = float(tol)

    def _select(self, pool: PoolFeatures, n: int) -> np.ndarray:
        x = as_float_matrix(pool.descriptors)
        x = x - x.mean(axis=0, dtype=np.float64).astype(x.dtype)
        sq = np.einsum("ij,ij->i", x, x)
        rng = np.random.default_rng(self.seed)
        centroids = _kmeans_plus_plus(x, sq, n, rng)
        threshold = self.tol * float(sq.sum(dtype=np.float64)) / len(x)
        for _ in range(self.max_iter):
            labels, d2 = _assign(x, centroids)
            updated = _centroids(x, labels, d2, centroids)
            shift = float(((updated - centroids) ** 2).sum())
            centroids = updated
            if shift <= threshold:
                break
        labels, d2 = _assign(x, centroids)
        representatives, sizes = _representatives(labels, d2, n)
        lead = int(np.argmax(sizes))  # largest cluster; ties: lowest cluster label
        local = farthest_point_order(x[representatives], len(representatives), first=lead)
        ordered = representatives[local]
        if len(ordered) < n:
            ordered = farthest_point_order(x, n, first=ordered)
        return ordered


def _kmeans_plus_plus(x, sq, k, rng) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): each centre drawn with probability ~ D^2."""
    n_points = len(x)
    chosen = np.empty(k, dtype=np.int64)
    chosen[0] = rng.integers(n_points)
    d2 = sq_distances_to(x, sq, x[chosen[0]])
    d2[chosen[0]] = 0.0
    taken = np.zeros(n_points, dtype=bool)
    taken[chosen[0]] = True
    for j in range(1, k):
        cumulative = np.cumsum(d2, dtype=np.float64)
        if cumulative[-1] > 0.0:  # the first frame whose cumulative weight exceeds u * total
            pick = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
        else:
            pick = int(np.argmin(taken))  # only duplicates of centres left: the lowest untaken index
        chosen[j] = pick
        taken[pick] = True
        np.minimum(d2, sq_distances_to(x, sq, x[pick]), out=d2)
        d2[taken] = 0.0
    return x[chosen].astype(np.float64)


def _assign(x, centroids) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid of every frame and the squared distance to it (scipy's vector quantisation)."""
    # scipy is imported here, not with the module: the Snakefile builds this class to check its options
    # at every parse, which should not load scipy.
    import scipy.cluster.vq

    labels, distances = scipy.cluster.vq.vq(x, centroids.astype(x.dtype), check_finite=False)
    return labels.astype(np.int64), distances.astype(np.float64) ** 2


def _centroids(x, labels, d2, previous) -> np.ndarray:
    """Cluster means; an empty cluster moves to the frame worst served by its centroid."""
    import scipy.sparse

    k = len(previous)
    counts = np.bincount(labels, minlength=k)
    # Sums per cluster as a sparse one-hot (k x N) product: one pass over x, accumulated in float64.
    one_hot = scipy.sparse.csr_matrix((np.ones(len(x)), (labels, np.arange(len(x)))), shape=(k, len(x)))
    sums = one_hot @ x
    centroids = previous.copy()
    filled = counts > 0
    centroids[filled] = sums[filled] / counts[filled, None]
    empty = np.flatnonzero(~filled)
    if len(empty):
        worst = np.argsort(-d2, kind="stable")[: len(empty)]
        centroids[empty] = x[worst]
    return centroids


def _representatives(labels, d2, k) -> tuple[np.ndarray, np.ndarray]:
    """Per non-empty cluster (in label order): the member nearest its centroid, and the cluster size."""
    by_cluster = np.lexsort((np.arange(len(labels)), d2, labels))  # label, then distance, then index
    sorted_labels = labels[by_cluster]
    first = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    sizes = np.bincount(labels, minlength=k)
    return by_cluster[first], sizes[sorted_labels[first]]
