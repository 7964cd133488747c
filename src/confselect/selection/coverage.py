"""How well a selection covers the pool in descriptor space (method-independent quality figures)."""

from __future__ import annotations

import numpy as np

from .distances import as_float_matrix, min_distances

#: Pool frames used to set the default RBF length scale (evenly strided, so no random state).
SCALE_SAMPLE = 2000


def coverage(descriptors, selected, length_scale: float | None = None) -> dict:
    """Coverage and diversity of the frames ``selected`` (indices into ``descriptors``).

    Returns a dict with (distances in descriptor units):

    ``max_min_distance``
        largest distance from any pool frame to its nearest selected frame (the k-centre radius; FPS
        minimises it greedily);
    ``mean_min_distance``
        mean of that distance over the pool;
    ``vendi_score``
        the Vendi score of the selection (Friedman & Dieng, 2023): exp of the Shannon entropy of the
        eigenvalues of K / m, with K the m x m RBF kernel exp(-|x_i - x_j|^2 / (2 l^2)) of the m selected
        frames. It is the effective number of distinct frames, between 1 (all identical) and m (all far
        apart). Chosen over log det K because a duplicated frame makes K singular and log det -inf, while
        the Vendi score merely counts it once;
    ``length_scale``
        l, by default the median pairwise distance among an evenly strided sample of the pool, so that
        every selection from one pool is scored with the same kernel;
    ``n_selected``
        m.

    The pool-to-selection distances are computed in float64 blocks of at most 32 MB.
    """
    x = as_float_matrix(descriptors)
    picks = np.asarray(selected, dtype=np.int64)
    if picks.ndim != 1 or len(picks) == 0:
        raise ValueError("coverage needs a non-empty 1-D array of selected indices")
    nearest, _ = min_distances(x, x[picks])
    if length_scale is None:
        length_scale = median_distance(x)
    return {
        "max_min_distance": float(nearest.max()),
        "mean_min_distance": float(nearest.mean()),
        "vendi_score": vendi_score(x[picks], length_scale),
        "length_scale": float(length_scale),
        "n_selected": int(len(picks)),
    }


def median_distance(descriptors, sample: int = SCALE_SAMPLE) -> float:
    """Median pairwise Euclidean distance among at most ``sample`` evenly strided frames."""
    from scipy.spatial.distance import pdist

    x = as_float_matrix(descriptors)
    rows = np.unique(np.linspace(0, len(x) - 1, min(sample, len(x))).astype(np.int64))
    if len(rows) < 2:
        return 1.0
    median = float(np.median(pdist(x[rows].astype(np.float64))))
    return median if median > 0 else 1.0


def vendi_score(points, length_scale: float) -> float:
    """exp(entropy of the eigenvalues of K/m), K the RBF kernel of ``points`` with ``length_scale``."""
    from scipy.spatial.distance import pdist, squareform

    x = as_float_matrix(points).astype(np.float64)
    kernel = np.exp(-squareform(pdist(x, "sqeuclidean")) / (2.0 * length_scale**2))
    eigenvalues = np.linalg.eigvalsh(kernel / len(x))
    eigenvalues = eigenvalues[eigenvalues > 1e-12]
    return float(np.exp(-np.sum(eigenvalues * np.log(eigenvalues))))
