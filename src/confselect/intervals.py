"""Uncertainty over seeds: the intervals and tests the report states next to every per-(method, n) figure.

A sweep's seeds are replicates: each seed reruns selection and training with a different random stream,
so the spread over seeds is the uncertainty of a method's result at a training-set size.  Sweeps have few
seeds (3-10), so every interval here is one that stays honest for small samples:

* a mean over seeds gets Student's t-interval (not a normal one: with 3 seeds t_0.975 = 4.30, not 1.96);
* a fraction of seeds (stable MD) gets Wilson's score interval, which, unlike the normal approximation,
  does not collapse to [1, 1] when every seed passes;
* a median over seeds gets the distribution-free order-statistic interval (the binomial ranks that cover the
  median with at least the stated confidence), widened to the sample's range when there are too few seeds;
* paired comparisons use the Wilcoxon signed-rank test (exact without ties or zero differences, scipy's
  normal approximation otherwise) with Holm's step-down correction over all the comparisons a report makes.  With k paired seeds the smallest two-sided p-value the exact test can give
  is 2 / 2^k (0.25 for 3 seeds, 0.0625 for 5): :func:`min_wilcoxon_p` says when a sweep cannot support a
  claim at all, and the report says so instead of printing "no difference".
"""

from __future__ import annotations

import math

import numpy as np

#: confidence level of every interval in the report
CONFIDENCE = 0.95


def mean_interval(values, confidence: float = CONFIDENCE) -> dict:
    """Mean over seeds with Student's t-interval: ``{"mean", "low", "high", "n_seeds"}`` (NaN-free values
    only; the interval is NaN with fewer than two seeds)."""
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    n = len(x)
    if n == 0:
        return {"mean": math.nan, "low": math.nan, "high": math.nan, "n_seeds": 0}
    mean = float(x.mean())
    if n < 2:
        return {"mean": mean, "low": math.nan, "high": math.nan, "n_seeds": 1}
    from scipy.stats import t

    half = float(t.ppf(0.5 + confidence / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return {"mean": mean, "low": mean - half, "high": mean + half, "n_seeds": n}


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> dict:
    """Fraction ``successes / n`` with Wilson's score interval: ``{"fraction", "low", "high", "n_seeds"}``."""
    if n == 0:
        return {"fraction": math.nan, "low": math.nan, "high": math.nan, "n_seeds": 0}
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + confidence / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # the bounds bracket p exactly (at p = 1 the upper bound is 1 only up to rounding)
    return {"fraction": p, "low": min(p, max(0.0, centre - half)), "high": max(p, min(1.0, centre + half)),
            "n_seeds": n}


def median_interval(values, confidence: float = CONFIDENCE) -> dict:
    """Median over seeds with the distribution-free order-statistic interval ``[x_(r), x_(s)]``: the
    narrowest symmetric ranks whose binomial(n, 1/2) coverage is at least ``confidence``; with fewer seeds
    than that needs (n < 6 at 95 %) the interval is the sample range and ``"coverage"`` says what it covers."""
    x = np.sort(np.asarray([v for v in values if v is not None and not np.isnan(v)], dtype=float))
    n = len(x)
    if n == 0:
        return {"median": math.nan, "low": math.nan, "high": math.nan, "coverage": math.nan, "n_seeds": 0}
    from scipy.stats import binom

    # P(x_(r) <= median <= x_(n-1-r)), ranks from 0, is 1 - 2 P(Bin(n, 1/2) <= r): take the largest r
    # that still covers with ``confidence``, else the range (r = 0)
    best = (0, n - 1, float(1.0 - 2.0 * binom.cdf(0, n, 0.5)))
    for r in range((n - 1) // 2, 0, -1):
        coverage = float(1.0 - 2.0 * binom.cdf(r, n, 0.5))
        if coverage >= confidence:
            best = (r, n - 1 - r, coverage)
            break
    low, high, coverage = best
    return {"median": float(np.median(x)), "low": float(x[low]), "high": float(x[high]),
            "coverage": float(coverage), "n_seeds": n}


def min_wilcoxon_p(n_pairs: int) -> float:
    """Smallest two-sided p-value the exact Wilcoxon signed-rank test can give with ``n_pairs`` pairs."""
    return min(1.0, 2.0 / 2.0**n_pairs) if n_pairs > 0 else 1.0


def paired_test(a, b) -> dict:
    """Two-sided Wilcoxon signed-rank test of ``a - b`` over paired seeds (NaN pairs dropped), exact where
    the differences have no ties or zeros.

    Returns ``{"n_pairs", "median_difference", "p", "min_p"}``; ``p`` is 1 when every difference is zero."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    d = a[keep] - b[keep]
    n = int(len(d))
    out = {"n_pairs": n, "median_difference": float(np.median(d)) if n else math.nan, "min_p": min_wilcoxon_p(n)}
    if n == 0 or np.all(d == 0):
        return {**out, "p": 1.0}
    from scipy.stats import wilcoxon

    # scipy's "auto": the exact null distribution for up to 50 pairs without ties or zeros
    out["p"] = float(wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)
    return out


def holm(p_values) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error over all the comparisons passed)."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    order = np.argsort(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()
