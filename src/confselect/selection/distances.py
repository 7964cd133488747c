"""Distance kernels shared by the selection methods.

Greedy farthest-point sampling (FPS, the greedy k-centre heuristic) is the workhorse of several methods;
it is written here once, in two forms:

* :func:`farthest_point_order` for points in R^d; on large pools each pass over the data also computes the
  distances to the frames most likely to be picked next, so one memory-bound pass serves several picks;
* :func:`farthest_point_order_1d` for scalars (time, energy), exact with a heap of gaps in
  O((N + n) log N), because 1-D FPS only ever splits one interval per pick.

Neither numpy, scipy nor torch offers an incremental FPS; ``scipy.spatial.distance.cdist`` would build the
full N x n matrix, which the selection loop never needs. Triangle-inequality pruning is not used: in 128
dimensions distances concentrate, and on Gaussian-mixture pools it skipped almost no frames.
"""

from __future__ import annotations

import heapq

import numpy as np

#: Largest float64 block (elements) in chunked all-pairs distances: 4e6 x 8 B = 32 MB (~100 MB with
#: temporaries).
CHUNK_ELEMENTS = 4_000_000
#: Pools up to this many descriptor entries get exact difference-based distances in FPS.
EXACT_ELEMENTS = 1_000_000
#: Extra distance columns computed per pass over a large pool in FPS (see ``_fps_lookahead``).
LOOKAHEAD = 16


def as_float_matrix(points) -> np.ndarray:
    """``points`` as a 2-D floating array (float32 and float64 kept, anything else to float64)."""
    x = np.asarray(points)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"expected an (n_frames, n_features) array, got shape {x.shape}")
    return x


def sq_distances_to(x: np.ndarray, sq_norms: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances from every row of ``x`` to ``centre``, clipped at 0.

    Uses |x|^2 - 2 x.c + |c|^2 so that the cost is one matrix-vector product (BLAS), the bottleneck of FPS.
    """
    d2 = sq_norms - 2.0 * (x @ centre)
    d2 += centre @ centre
    np.maximum(d2, 0.0, out=d2)
    return d2


def min_distances(points, centres, chunk_elements: int = CHUNK_ELEMENTS) -> tuple[np.ndarray, np.ndarray]:
    """Distance from every point to its nearest centre, and that centre's index (float64, chunked).

    Works in float64 row blocks of at most ``chunk_elements`` distances, so a 10^5 x 10^3 problem never
    holds more than a few blocks of 32 MB at once.
    """
    x = as_float_matrix(points)
    c = as_float_matrix(centres).astype(np.float64)
    shift = x.mean(axis=0, dtype=np.float64)  # centring keeps the norm expansion well conditioned
    c = c - shift
    c_sq = np.einsum("ij,ij->i", c, c)
    n_points = len(x)
    dist = np.empty(n_points)
    nearest = np.empty(n_points, dtype=np.int64)
    rows = max(1, chunk_elements // max(1, len(c)))
    for start in range(0, n_points, rows):
        block = x[start : start + rows].astype(np.float64) - shift
        d2 = np.einsum("ij,ij->i", block, block)[:, None] - 2.0 * (block @ c.T) + c_sq[None, :]
        j = np.argmin(d2, axis=1)
        nearest[start : start + rows] = j
        dist[start : start + rows] = np.sqrt(np.maximum(d2[np.arange(len(j)), j], 0.0))
    return dist, nearest


def farthest_point_order(points, n: int, first=0) -> np.ndarray:
    """Greedy farthest-point order of ``n`` rows of ``points`` (Euclidean).

    Parameters
    ----------
    points : (N, d) array
    n : number of picks (1 <= n <= N)
    first : int or sequence of int
        The leading pick(s), taken as given; every later pick maximises the distance to the nearest
        frame already picked. Ties go to the lowest frame index; frames at distance 0 from the picks
        (duplicates) come last, in index order.

    Returns
    -------
    (n,) int64 array of distinct row indices.
    """
    x = as_float_matrix(points)
    n_points = len(x)
    seeds = np.atleast_1d(np.asarray(first, dtype=np.int64))
    if not 1 <= n <= n_points or len(seeds) > n or len(np.unique(seeds)) != len(seeds):
        raise ValueError(f"cannot order {n} of {n_points} points starting from {seeds.tolist()}")
    if x.size <= EXACT_ELEMENTS:
        return _fps_exact(x, n, seeds)
    return _fps_lookahead(x, n, seeds)


def _fps_exact(x: np.ndarray, n: int, seeds: np.ndarray) -> np.ndarray:
    """Small pools: plain differences, exact for exactly representable data (ties resolve by index)."""
    mind2 = np.full(len(x), np.inf)  # squared distance to the nearest pick; -1 marks a pick
    order = np.empty(n, dtype=np.int64)
    for t in range(n):
        pick = int(seeds[t]) if t < len(seeds) else int(np.argmax(mind2))
        diff = x - x[pick]
        np.minimum(mind2, np.einsum("ij,ij->i", diff, diff), out=mind2)
        mind2[pick] = -1.0
        order[t] = pick
    return order


def _fps_lookahead(x: np.ndarray, n: int, seeds: np.ndarray, lookahead: int = LOOKAHEAD) -> np.ndarray:
    """Large pools: the same greedy order, several picks per pass over the pool.

    A pass over the pool (memory-bound, ~50 MB for 10^5 x 128 float32) costs the same for one distance
    column as for a few, so each pass also computes the distances to the ``lookahead`` frames currently
    farthest from the picks. Whenever the next pick is one of them its column is already there; in high
    dimension it usually is, and a pass yields about ten picks. The order is the plain greedy one
    (up to float rounding); the look-ahead set depends only on the state, never on ``n``, so prefixes
    agree exactly.
    """
    x = x - x.mean(axis=0, dtype=np.float64).astype(x.dtype)  # conditioning of |x|^2 - 2 x.c + |c|^2
    sq = np.einsum("ij,ij->i", x, x)
    n_points = len(x)
    mind2 = np.full(n_points, np.inf, dtype=x.dtype)
    order = np.empty(n, dtype=np.int64)
    t = 0
    pick = int(seeds[0])
    while t < n:
        candidates = mind2.copy()
        candidates[pick] = -1.0
        k = min(lookahead, n_points - t - 1)
        ahead = np.argpartition(candidates, n_points - k)[n_points - k :] if k > 0 else np.empty(0, np.int64)
        batch = np.concatenate(([pick], ahead[candidates[ahead] >= 0]))
        d2 = sq[:, None] - 2.0 * (x @ x[batch].T)
        d2 += sq[batch][None, :]
        column = {int(b): j for j, b in enumerate(batch)}
        while t < n and pick in column:
            np.minimum(mind2, d2[:, column.pop(pick)], out=mind2)
            mind2[pick] = -1.0
            order[t] = pick
            t += 1
            if t < n:
                pick = int(seeds[t]) if t < len(seeds) else int(np.argmax(mind2))
    return order


def farthest_point_order_1d(values, n: int) -> np.ndarray:
    """Greedy farthest-point order of ``n`` scalar values, starting from the smallest.

    The second pick is the largest value, then each pick is the value nearest the middle of the widest
    remaining interval between picks (exactly the 1-D FPS choice: it maximises the distance to the nearest
    pick). Ties go to the smaller value, then to the lower index. This is a coarse-to-fine, van der
    Corput-like order: on 2^m + 1 evenly spaced values the first 2^k + 1 picks (k <= m) are evenly spaced,
    and every prefix keeps the farthest-point guarantee (its covering radius is at most twice the best
    possible with that many picks).

    Returns
    -------
    (n,) int64 array of distinct indices into ``values``.
    """
    v_raw = np.asarray(values, dtype=np.float64).ravel()
    size = len(v_raw)
    if not 1 <= n <= size:
        raise ValueError(f"cannot order {n} of {size} values")
    by_value = np.argsort(v_raw, kind="stable")
    v = v_raw[by_value]

    def best_in_gap(lo: int, hi: int):
        """(score, sorted position) of the best value strictly between the picks at sorted positions lo and
        hi (hi == size: no pick above lo), or None if there is none."""
        if hi - lo < 2:
            return None
        if hi == size:  # the largest value; of equal ones, the lowest index
            return v[size - 1] - v[lo], max(lo + 1, int(np.searchsorted(v, v[size - 1], side="left")))
        # min(v - v_lo, v_hi - v) rises then falls over sorted v: the best value flanks the midpoint.
        i = int(np.searchsorted(v, 0.5 * (v[lo] + v[hi]), side="left"))
        below = int(np.searchsorted(v, v[max(i - 1, lo + 1)], side="left"))  # first of equal values
        candidates = sorted({min(max(c, lo + 1), hi - 1) for c in (below, i)})
        scores = [min(v[c] - v[lo], v[hi] - v[c]) for c in candidates]
        best = int(np.argmax(scores))  # first maximum: the smaller value wins a tie
        return scores[best], candidates[best]

    order = [0]
    heap: list = []
    gap = best_in_gap(0, size)
    if gap is not None:
        heapq.heappush(heap, (-gap[0], gap[1], 0, size))
    while len(order) < n:
        _, pos, lo, hi = heapq.heappop(heap)
        order.append(pos)
        for a, b in ((lo, pos), (pos, hi)):
            gap = best_in_gap(a, b)
            if gap is not None:
                heapq.heappush(heap, (-gap[0], gap[1], a, b))
    return by_value[np.asarray(order, dtype=np.int64)]
