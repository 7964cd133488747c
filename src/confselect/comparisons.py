"""Per-(method, n) statistics over seeds and paired method-against-method tests, from ``summary.csv``.

:func:`seed_statistics` gives, for every (system, labeller, method, n_train), the mean and 95 % t-interval
over seeds of the test errors, the Wilson interval of the fraction of seeds with stable NVT and with
stable NPT, and the median time survived with its order-statistic interval (:mod:`confselect.intervals`).
:func:`paired_comparisons` tests, at every n, every pair of methods on the seeds they share.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from .intervals import holm, mean_interval, median_interval, paired_test, wilson_interval

#: error columns summarised as mean and t-interval over seeds
ERROR_COLUMNS = ("force_rmse_eV_A", "force_l4_eV_A", "energy_rmse_eV_atom")
#: a block of models compared with each other: one system, labeller and pool recipe
BLOCK = ["system", "labeller", "pool"]
GROUP = BLOCK + ["method", "n_train"]
#: the pool recipe of a summary written before recipes existed (one MD pool)
DEFAULT_POOL = "md"


def arms(table):
    """``table`` with each method named ``<method> (<pool>)`` where it holds several pool recipes, so that a
    figure drawn per method shows each (pool, method) arm as its own line."""
    table = with_pool(table)
    if table["pool"].nunique() < 2:
        return table
    return table.assign(method=table["method"].astype(str) + " (" + table["pool"].astype(str) + ")")


def with_pool(summary):
    """``summary`` with a ``pool`` column (the default recipe's name where it has none)."""
    if "pool" in summary:
        return summary
    return summary.assign(pool=DEFAULT_POOL)


def seed_statistics(summary):
    """One row per (system, labeller, method, n_train) with ``<column>_mean/_low/_high`` for the errors,
    ``nvt_stable_fraction/_low/_high``, ``stress_stable_...`` and ``npt_stable_...`` alike, ``time_survived_fs_median/_low/
    _high`` and ``n_seeds``."""
    import pandas as pd

    rows = []
    for key, group in with_pool(summary).groupby(GROUP, sort=True):
        row = dict(zip(GROUP, key))
        row["n_seeds"] = int(group["seed"].nunique())
        for column in ERROR_COLUMNS:
            if column in group:
                m = mean_interval(group[column].astype(float))
                row.update({f"{column}_mean": m["mean"], f"{column}_low": m["low"], f"{column}_high": m["high"]})
        for name, column in (("nvt", "stable"), ("stress", "stress_stable"), ("npt", "npt_stable")):
            if column in group:
                w = wilson_interval(int(group[column].astype(bool).sum()), len(group))
                row.update({f"{name}_stable_fraction": w["fraction"], f"{name}_stable_low": w["low"],
                            f"{name}_stable_high": w["high"]})
        if "time_survived_fs" in group:
            t = median_interval(group["time_survived_fs"].astype(float))
            row.update({"time_survived_fs_median": t["median"], "time_survived_fs_low": t["low"],
                        "time_survived_fs_high": t["high"], "time_survived_coverage": t["coverage"]})
        if "label_core_hours" in group:
            row["label_core_hours_mean"] = float(np.nanmean(group["label_core_hours"].astype(float)))
        rows.append(row)
    return pd.DataFrame(rows)


def paired_comparisons(summary, column: str = "force_l4_eV_A", alpha: float = 0.05):
    """Every pair of methods at every n on the seeds both have: the exact Wilcoxon signed-rank test of
    ``column`` (lower is better), Holm-corrected over all rows.  ``outcome`` is ``"<a> lower"``,
    ``"<b> lower"``, ``"no significant difference"`` or, where even a perfect separation at every n could
    not reach ``alpha`` after the correction with that many seeds, ``"too few seeds"``."""
    import pandas as pd

    rows = []
    for (system, labeller, pool, n), data in with_pool(summary).groupby(BLOCK + ["n_train"], sort=True):
        by_method = {m: g.set_index("seed")[column].astype(float) for m, g in data.groupby("method", sort=True)}
        for a, b in itertools.combinations(sorted(by_method), 2):
            shared = sorted(set(by_method[a].index) & set(by_method[b].index))
            test = paired_test(by_method[a].loc[shared].to_numpy(), by_method[b].loc[shared].to_numpy())
            rows.append({"system": system, "labeller": labeller, "pool": pool, "n_train": int(n),
                         "method_a": a, "method_b": b,
                         "n_pairs": test["n_pairs"], f"median_difference_{column}": test["median_difference"],
                         "p": test["p"], "min_p": test["min_p"]})
    table = pd.DataFrame(rows)
    if not len(table):
        return table
    table["p_holm"] = holm(table["p"].to_numpy())
    table["outcome"] = [_outcome(r, column, alpha, len(table)) for r in table.to_dict("records")]
    return table


def _outcome(row: dict, column: str, alpha: float, m: int) -> str:
    # Holm multiplies the smallest p by m: below that many seeds a perfect separation is not significant
    if row["min_p"] * m > alpha:
        return "too few seeds"
    if row["p_holm"] >= alpha:
        return "no significant difference"
    lower = row["method_a"] if row[f"median_difference_{column}"] < 0 else row["method_b"]
    return f"{lower} lower"


def seeds_needed(alpha: float, comparisons: int = 1) -> int:
    """Fewest paired seeds with which ``comparisons`` Holm-corrected exact two-sided Wilcoxon tests can
    reach ``alpha`` at all (``comparisons * 2 / 2^k <= alpha``)."""
    return int(math.ceil(math.log2(2.0 * comparisons / alpha) - 1e-12))


def device_hours(data, device, seconds, threads):
    """(core-hours on the CPU, GPU-hours on CUDA) of a time column: seconds x threads / 3600 on the CPU (NaN
    on CUDA), seconds / 3600 on CUDA (0 on the CPU); an AL column without a time (a one-shot arm) counts 0."""
    import pandas as pd

    on_gpu = data.get(device, pd.Series("cpu", index=data.index)).fillna("cpu").astype(str).str.startswith("cuda")
    time = data[seconds].fillna(0.0) if seconds.startswith("al_") else data[seconds]
    return (np.where(on_gpu, np.nan, time * data[threads].fillna(1) / 3600), np.where(on_gpu, time / 3600, 0.0))


def cost_table(summary):
    """Per (system, labeller, method, n_train), means over seeds: labels paid for (``n_labels``), labeller
    core-hours of them, training hours (core-hours on CPU, GPU-hours on CUDA, from its recorded time and
    threads), ML-MD hours (NVT and NPT runs, wall time, with the device they ran on) and what only an
    active-learning arm pays: its committees' training (core- or GPU-hours, like training) and its
    exploration jobs (hours of wall time); 0 for a one-shot method."""
    data = with_pool(summary).copy()
    for column in ("label_core_hours", "train_time_s", "train_threads", "md_wall_s", "npt_wall_s",
                   "al_committee_train_time_s", "al_committee_train_threads", "al_exploration_wall_s"):
        if column not in data:
            data[column] = np.nan
    if "n_labels" not in data:
        data["n_labels"] = data["n_train"]
    data["train_core_hours"], data["train_gpu_hours"] = device_hours(data, "train_device", "train_time_s",
                                                                      "train_threads")
    data["al_committee_core_hours"], data["al_committee_gpu_hours"] = device_hours(
        data, "al_committee_train_device", "al_committee_train_time_s", "al_committee_train_threads")
    data["al_exploration_hours"] = data["al_exploration_wall_s"].fillna(0.0) / 3600
    # NaN where neither run recorded its wall time (results from before it was recorded), not 0
    data["mlmd_hours"] = data[["md_wall_s", "npt_wall_s"]].sum(axis=1, min_count=1) / 3600
    columns = ["n_labels", "label_core_hours", "train_core_hours", "train_gpu_hours", "mlmd_hours",
               "al_committee_core_hours", "al_committee_gpu_hours", "al_exploration_hours"]
    table = data.groupby(GROUP, sort=True)[columns].mean().reset_index()
    table["n_seeds"] = data.groupby(GROUP, sort=True)["seed"].nunique().values
    return table

