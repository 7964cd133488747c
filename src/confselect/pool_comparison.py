"""Which pool recipe is worth labelling: the pool recipes of a sweep compared at equal labels.

Every recipe runs the same methods, sizes and seeds (``sweep.pools``), so at each training-set size n the
recipes' models had the same number of labels. :func:`pool_table` gives, per (system, labeller, pool, n),
the mean over methods and seeds of every error column (absolute values of signed relative errors) and the
fraction of models whose every MD run was stable; :func:`pool_markdown` writes, per observable and n, the
recipe with the lowest mean error (and over how many models, where some have no value), and per recipe the
fractions of models with stable NVT, stress and NPT runs and the smallest n from which all ran stable MD.
"""

from __future__ import annotations

import math

import numpy as np

#: Error columns compared between pools (where the summary has them), lower is better.
ERROR_COLUMNS = (
    "force_l4_eV_A", "force_rmse_eV_A", "energy_rmse_eV_atom",
    "lattice_constant_rel_error", "bulk_modulus_rel_error", "C11_rel_error", "C12_rel_error", "C44_rel_error",
    "vacancy_formation_energy_rel_error", "phonon_rms_error_THz",
)
#: Per-temperature error columns (NPT density / lattice parameter, RDF) are found by their pattern.
PATTERN_SUFFIXES = ("K_rel_error_vs_teacher", "K_rel_error")
STABLE_COLUMNS = ("stable", "stress_stable", "npt_stable")


def error_columns(summary) -> list[str]:
    """The error columns of ``summary`` that hold at least one number."""
    columns = [c for c in ERROR_COLUMNS if c in summary]
    columns += sorted(c for c in summary if c.startswith(("density_", "lattice_constant_")) and c.endswith(PATTERN_SUFFIXES)
                      and c not in columns)
    columns += sorted(c for c in summary if c.startswith("rdf_error_") and c.endswith("_vs_teacher"))
    return [c for c in columns if summary[c].notna().any()]


def all_stable(summary) -> np.ndarray:
    """Per model: whether its NVT run and, where they ran, its stress and NPT runs were stable."""
    stable = np.ones(len(summary), dtype=bool)
    for column in STABLE_COLUMNS:
        if column in summary:
            stable &= summary[column].fillna(True).astype(bool).to_numpy()
    return stable


def pool_table(summary):
    """Per (system, labeller, pool, n_train): mean |error| over methods and seeds of every error column,
    ``stable_fraction`` (models whose every MD run was stable) and ``n_models``. The upper-bound arm
    (method ``full``) is left out: its size is not a label budget the methods share."""
    import pandas as pd

    from .comparisons import with_pool
    from .upper_bound import FULL_ARM

    data = with_pool(summary)
    data = data[data["method"] != FULL_ARM].copy()
    columns = error_columns(data)
    data[columns] = data[columns].astype(float).abs()
    data["all_stable"] = all_stable(data)
    keys = ["system", "labeller", "pool", "n_train"]
    groups = data.groupby(keys, sort=True)
    table = groups[columns].mean()
    for column in columns:  # models with a value (a failed run or fit has none): the mean is over these
        table[f"{column}_count"] = groups[column].count()
    for name, column in zip(("nvt", "stress", "npt"), STABLE_COLUMNS):
        if column in data:
            table[f"{name}_stable_fraction"] = groups[column].apply(lambda v: v.fillna(True).astype(bool).mean())
    table["stable_fraction"] = groups["all_stable"].mean()
    table["n_models"] = groups["seed"].size()
    return table.reset_index() if len(table) else pd.DataFrame(columns=keys + columns)


def best_pools(table) -> list[dict]:
    """Per (system, labeller, error column, n_train): the pool recipe with the lowest mean error, its value
    and the runner-up's (NaN where one recipe has a value)."""
    rows = []
    for (system, labeller, n), block in table.groupby(["system", "labeller", "n_train"], sort=True):
        indexed = block.set_index("pool")
        for column in (c for c in table if f"{c}_count" in table):
            values = indexed[column].dropna().sort_values()
            if not len(values):
                continue
            best = values.index[0]
            rows.append({"system": system, "labeller": labeller, "n_train": int(n), "observable": column,
                         "best_pool": best, "best": float(values.iloc[0]),
                         "runner_up": float(values.iloc[1]) if len(values) > 1 else math.nan,
                         "count": int(indexed.loc[best, f"{column}_count"]),
                         "n_models": int(indexed.loc[best, "n_models"])})
    return rows


def stable_from(table, fraction: float = 1.0) -> dict:
    """(system, labeller, pool) -> smallest n_train from which every larger swept n has at least
    ``fraction`` of its models stable (inf where no such n)."""
    out = {}
    for key, block in table.groupby(["system", "labeller", "pool"], sort=True):
        block = block.sort_values("n_train")
        ok = block["stable_fraction"].to_numpy() >= fraction - 1e-12
        sizes = block["n_train"].to_numpy()
        first = math.inf
        for i in range(len(sizes) - 1, -1, -1):
            if not ok[i]:
                break
            first = float(sizes[i])
        out[key] = first
    return out


def pool_markdown(table) -> str:
    """The answer to "which pool is worth labelling", every number from ``table``: per system a table of
    the lowest-error pool recipe per observable and size, and the size from which each recipe's models all
    run stable MD."""
    lines = ["# Pool recipes at equal labels", ""]
    best = best_pools(table)
    stable = stable_from(table)
    for (system, labeller), block in table.groupby(["system", "labeller"], sort=True):
        pools = sorted(block["pool"].unique())
        sizes = sorted(int(n) for n in block["n_train"].unique())
        lines += [f"## {system}, {labeller} labels", "",
                  f"Pool recipes {', '.join(pools)}; each cell: the recipe with the lowest mean |error| over "
                  f"methods and seeds at that number of labels, its value, and the next recipe's.", "",
                  "| observable | " + " | ".join(f"n = {n}" for n in sizes) + " |",
                  "|---|" + "---|" * len(sizes)]
        mine = [r for r in best if r["system"] == system and r["labeller"] == labeller]
        for observable in dict.fromkeys(r["observable"] for r in mine):
            cells = {r["n_train"]: r for r in mine if r["observable"] == observable}
            lines.append(f"| {observable} | " + " | ".join(_cell(cells.get(n)) for n in sizes) + " |")
        lines += ["", "[k of m]: the mean is over the k of m models that have the value (a run that failed, "
                  "or a model with no equation-of-state minimum, has none).", "",
                  "Models with stable MD (NVT / stress / every NPT run / all of them):", "",
                  "| pool | " + " | ".join(f"n = {n}" for n in sizes) + " | all stable from |",
                  "|---|" + "---|" * (len(sizes) + 1)]
        for pool in pools:
            rows = block[block["pool"] == pool].set_index("n_train")
            cells = [_stability_cell(rows.loc[n]) if n in rows.index else "" for n in sizes]
            first = stable[(system, labeller, pool)]
            lines.append(f"| {pool} | " + " | ".join(cells) + " | "
                         + (f"n = {int(first)}" if np.isfinite(first) else "no swept size") + " |")
        lines.append("")
    return "\n".join(lines)


def _cell(row: dict | None) -> str:
    if row is None:
        return ""
    text = f"**{row['best_pool']}** {row['best']:.3g}"
    if row["count"] < row["n_models"]:
        text += f" [{row['count']} of {row['n_models']}]"
    return text + (f" ({row['runner_up']:.3g})" if np.isfinite(row["runner_up"]) else "")


def _stability_cell(row) -> str:
    """Fractions of models stable in NVT / stress / NPT / all, as percentages."""
    parts = [row.get(f"{name}_stable_fraction", math.nan) for name in ("nvt", "stress", "npt")]
    parts.append(row["stable_fraction"])
    return " / ".join("-" if not np.isfinite(v) else f"{100 * v:.0f} %" for v in parts)
