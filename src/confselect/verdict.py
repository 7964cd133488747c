"""Labels to target: how many labelled configurations each method needs, with bootstrap intervals over seeds.

For each (system, labeller, method) the sweep gives, per training-set size n, one model per seed.  A target
is a criterion on the seeds at one n (:data:`CRITERIA`):

* ``force_l4``: the mean over seeds of the test force L4 error is at most ``targets.force_l4_eV_A``;
* ``stable_md``: the fraction of seeds whose NVT run, stress run and every NPT run were stable is at least
  ``targets.stable_fraction``;
* ``density``: the fraction of seeds whose NPT density error is within ``targets.density_rel_error`` at
  every validated temperature is at least ``targets.stable_fraction``.

``n_to_target`` is the smallest size at which the criterion first holds, interpolated on log n between the
last size that misses it and the first that meets it (the L4 error on log-log axes, where a learning curve
is close to straight; fractions linearly).  A criterion met at the smallest size gives that size with
``censored = "left"`` (the true value is at most it), one never met gives infinity with
``censored = "right"`` (more than the largest size).  The interval is the percentile bootstrap over seeds:
whole seeds (each with its models at every n) are resampled with replacement, ``n_bootstrap`` times.  Where
a fraction jumps from 0 to 1 between two sizes (every seed fails at one and passes at the next), no
resampling can move the crossing and the data say only that it lies between them: the interval is then
widened to those two sizes (:func:`step_bracket`), and the ratio's interval to what both intervals allow.  The
ratio to the baseline method (``random``) is the baseline's n over the method's n, bootstrapped with both
methods' seeds resampled independently: a ratio of 10 means the method needs a tenth of the labels.
"""

from __future__ import annotations

import math

import numpy as np

from .intervals import CONFIDENCE


def _force_l4(rows) -> np.ndarray:
    return rows["force_l4_eV_A"].to_numpy(dtype=float)


def _stable(rows) -> np.ndarray:
    ok = rows["stable"].astype(bool)
    for column in ("stress_stable", "npt_stable"):
        if column in rows:
            ok &= rows[column].fillna(False).astype(bool)
    return ok.to_numpy(dtype=float)


def _density_within(bound: float):
    def value(rows) -> np.ndarray:
        columns = [c for c in rows.columns if c.startswith("density_") and c.endswith("_rel_error_vs_teacher")]
        if not columns:
            return np.full(len(rows), np.nan)
        errors = rows[columns].abs().to_numpy(dtype=float)
        # an unstable NPT run has no density (NaN): it does not meet the bound
        return np.all(np.nan_to_num(errors, nan=np.inf) <= bound, axis=1).astype(float)

    return value


def criteria(targets: dict) -> dict:
    """name -> (per-model value, threshold on its mean over seeds, "below"/"above", interpolate on log axes).

    Every criterion is a mean over the seeds at one n of a per-model value (the L4 error, or 1/0 for a
    model that meets a condition), which is what lets the bootstrap resample a seeds x sizes matrix."""
    return {
        "force_l4": (_force_l4, targets["force_l4_eV_A"], "below", True),
        "stable_md": (_stable, targets["stable_fraction"], "above", False),
        "density": (_density_within(targets["density_rel_error"]), targets["stable_fraction"], "above", False),
    }


#: what each criterion means, for the verdict's text
CRITERIA = {
    "force_l4": "mean force L4 error <= {force_l4_eV_A:g} eV/A",
    "stable_md": "NVT, stress and NPT runs stable in >= {stable_fraction:.0%} of seeds",
    "density": "density within {density_rel_error:.0%} at every temperature in >= {stable_fraction:.0%} of seeds",
}


def crossing(sizes, scores, threshold: float, direction: str, log_score: bool) -> tuple[float, str]:
    """``(n, censored)``: the first size where ``scores`` meet ``threshold``, interpolated on log n."""
    sizes, scores = np.asarray(sizes, dtype=float), np.asarray(scores, dtype=float)
    met = scores <= threshold if direction == "below" else scores >= threshold
    met &= np.isfinite(scores)
    if not met.any():
        return math.inf, "right"
    b = int(np.argmax(met))
    if b == 0:
        return float(sizes[0]), "left"
    a = b - 1
    ya, yb, y = scores[a], scores[b], threshold
    if not np.isfinite(ya):
        return float(sizes[b]), ""
    if log_score and ya > 0 and yb > 0 and y > 0:
        ya, yb, y = math.log(ya), math.log(yb), math.log(y)
    frac = 0.0 if ya == yb else (y - ya) / (yb - ya)
    frac = min(max(frac, 0.0), 1.0)
    return float(math.exp(math.log(sizes[a]) + frac * (math.log(sizes[b]) - math.log(sizes[a])))), ""


def seed_matrix(rows, value) -> tuple[np.ndarray, np.ndarray]:
    """``(sizes, V)``: ``V[k, i]`` is the per-model value of the k-th seed at the i-th size (NaN if absent)."""
    sizes = np.array(sorted(rows["n_train"].unique()), dtype=float)
    seeds = sorted(rows["seed"].unique())
    matrix = np.full((len(seeds), len(sizes)), np.nan)
    values = value(rows)
    seed_index = {s: k for k, s in enumerate(seeds)}
    size_index = {n: i for i, n in enumerate(sizes)}
    for v, s, n in zip(values, rows["seed"], rows["n_train"]):
        matrix[seed_index[s], size_index[float(n)]] = v
    return sizes, matrix


def _column_means(matrix: np.ndarray) -> np.ndarray:
    counts = np.isfinite(matrix).sum(axis=-2)
    with np.errstate(invalid="ignore"):
        return np.where(counts > 0, np.nansum(matrix, axis=-2) / np.maximum(counts, 1), np.nan)


def n_to_target(rows, value, threshold: float, direction: str, log_score: bool) -> tuple[float, str]:
    """:func:`crossing` of one method's models (a DataFrame with ``n_train``, ``seed`` and the value's columns)."""
    sizes, matrix = seed_matrix(rows, value)
    return crossing(sizes, _column_means(matrix), threshold, direction, log_score)


def step_bracket(rows, value, threshold: float, direction: str) -> tuple[float, float] | None:
    """The two swept sizes between which a fraction jumps from 0 at one to 1 at the next, where that jump
    is the crossing: every seed fails at the first and passes at the second, so nothing in the data places
    the transition inside the bracket (the interpolated n is a convention there).  None otherwise."""
    if direction != "above":
        return None
    sizes, matrix = seed_matrix(rows, value)
    scores = _column_means(matrix)
    met = np.isfinite(scores) & (scores >= threshold)
    if not met.any() or met[0]:
        return None
    b = int(np.argmax(met))
    if scores[b - 1] == 0.0 and scores[b] == 1.0:
        return float(sizes[b - 1]), float(sizes[b])
    return None


def bootstrap_n(rows, value, threshold, direction, log_score, n_bootstrap: int, rng) -> np.ndarray:
    """``n_to_target`` of ``n_bootstrap`` resamplings of whole seeds (with replacement)."""
    sizes, matrix = seed_matrix(rows, value)
    picks = rng.integers(0, len(matrix), size=(n_bootstrap, len(matrix)))
    means = _column_means(matrix[picks])
    return np.array([crossing(sizes, m, threshold, direction, log_score)[0] for m in means])


def quantiles(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile interval of bootstrap values that may hold infinities (no interpolation across them)."""
    values = values[~np.isnan(values)]
    if not len(values):
        return math.nan, math.nan
    tail = (1 - confidence) / 2
    low, high = np.quantile(values, [tail, 1 - tail], method="inverted_cdf")
    return float(low), float(high)


def labels_to_target(summary, targets: dict, baseline: str = "random", n_bootstrap: int = 2000,
                     seed: int = 0, confidence: float = CONFIDENCE):
    """One row per (system, labeller, method, target): ``n_to_target``, ``n_low``, ``n_high``, ``censored``,
    ``ratio_vs_random`` (to ``baseline``), ``ratio_low``, ``ratio_high``, ``n_seeds``, ``n_sizes``,
    ``labeller_core_hours_to_target`` (``n_to_target`` times the method's mean core-hours per label)."""
    import pandas as pd

    from .comparisons import BLOCK, with_pool

    rng = np.random.default_rng(seed)
    rows = []
    for (system, labeller, pool), data in with_pool(summary).groupby(BLOCK, sort=True):
        for target, (score, threshold, direction, log_score) in criteria(targets).items():
            found = {}
            for method, group in data.groupby("method", sort=True):
                point, censored = n_to_target(group, score, threshold, direction, log_score)
                boot = bootstrap_n(group, score, threshold, direction, log_score, n_bootstrap, rng)
                step = step_bracket(group, score, threshold, direction)
                low, high = quantiles(boot, confidence)
                if step is not None:  # resampling seeds that all agree cannot move n inside the bracket
                    low, high = min(low, step[0]), max(high, step[1])
                found[method] = (point, censored, boot, group, (low, high), step)
            base = found.get(baseline)
            for method, (point, censored, boot, group, (low, high), step) in found.items():
                ratio = ratio_low = ratio_high = math.nan
                if base is not None:
                    ratio = _ratio(base[0], point)
                    ratio_low, ratio_high = quantiles(_ratio(base[2], boot), confidence)
                    if method != baseline and (step is not None or base[5] is not None):
                        # the ratio can be anything the two (possibly widened) n intervals allow
                        ratio_low = min(ratio_low, float(_ratio(base[4][0], high)))
                        ratio_high = max(ratio_high, float(_ratio(base[4][1], low)))
                per_label = _core_hours_per_label(group)
                rows.append({
                    "system": system, "labeller": labeller, "pool": pool, "method": method, "target": target,
                    "criterion": CRITERIA[target].format(**targets),
                    "n_to_target": point, "n_low": low, "n_high": high, "censored": censored,
                    "ratio_vs_random": ratio, "ratio_low": ratio_low, "ratio_high": ratio_high,
                    "baseline": baseline if base is not None else "",
                    "baseline_n_to_target": base[0] if base is not None else math.nan,
                    "n_seeds": int(group["seed"].nunique()), "n_sizes": int(group["n_train"].nunique()),
                    "n_max": int(group["n_train"].max()), "n_min": int(group["n_train"].min()),
                    "labeller_core_hours_per_label": per_label,
                    "labeller_core_hours_to_target": point * per_label if np.isfinite(point) else math.inf,
                })
    return pd.DataFrame(rows)


def _ratio(base, method):
    """base / method with inf/inf and 0/0 undefined (NaN); works on arrays."""
    base, method = np.asarray(base, dtype=float), np.asarray(method, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = base / method
    out = np.where(np.isinf(base) & np.isinf(method), np.nan, out)
    return float(out) if out.ndim == 0 else out


def _core_hours_per_label(group) -> float:
    """Mean labeller core-hours per selected frame (a failed label costs its attempts too)."""
    if "label_core_hours" not in group:
        return math.nan
    total, labels = group["label_core_hours"].astype(float), group["n_train"].astype(float)
    keep = np.isfinite(total) & (labels > 0)
    return float((total[keep] / labels[keep]).mean()) if keep.any() else math.nan


def write_verdict(summary, out_dir, settings: dict) -> dict:
    """``verdict.csv``, ``verdict.md``, ``comparisons.csv`` and ``seed_statistics.csv`` in ``out_dir``."""
    from pathlib import Path

    from .comparisons import paired_comparisons, seed_statistics
    from .verdict_text import verdict_markdown

    from .upper_bound import FULL_ARM

    from .comparisons import with_pool

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = with_pool(summary)
    full = summary[summary["method"] == FULL_ARM]
    summary = summary[summary["method"] != FULL_ARM]  # the upper bound is reported, not ranked
    table = labels_to_target(summary, settings["targets"], settings["baseline_method"], settings["n_bootstrap"])
    comparisons = paired_comparisons(summary, alpha=settings["alpha"])
    paths = {"verdict_csv": out_dir / "verdict.csv", "verdict_md": out_dir / "verdict.md",
             "comparisons": out_dir / "comparisons.csv", "seed_statistics": out_dir / "seed_statistics.csv"}
    table.to_csv(paths["verdict_csv"], index=False)
    comparisons.to_csv(paths["comparisons"], index=False)
    seed_statistics(summary).to_csv(paths["seed_statistics"], index=False)
    paths["verdict_md"].write_text(verdict_markdown(table, comparisons, summary, settings, full) + "\n")
    return paths


def main(argv=None) -> None:
    """``python -m confselect.verdict SUMMARY_CSV OUT_DIR [--config FILE]``: re-judge a sweep."""
    import argparse
    from pathlib import Path

    import pandas as pd

    from .config import SCHEMA, report_settings

    parser = argparse.ArgumentParser(prog="python -m confselect.verdict", description=main.__doc__)
    parser.add_argument("summary", type=Path, help="a summary.csv of the workflow")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--config", type=Path, default=None,
                        help="config whose `report` section sets the targets (default: the schema's defaults)")
    args = parser.parse_args(argv)
    settings = report_settings(SCHEMA, args.config)
    summary = pd.read_csv(args.summary)
    for path in write_verdict(summary, args.out_dir, settings).values():
        print(path)


if __name__ == "__main__":
    main()
