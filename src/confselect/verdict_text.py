"""The verdict's text: the numbers of :func:`confselect.verdict.labels_to_target` and of the paired tests
as sentences and one table per (system, labeller); nothing in it is written by hand."""

from __future__ import annotations

import math

import numpy as np

from .intervals import CONFIDENCE


def format_n(value: float, censored: str, n_max: int) -> str:
    """A label count for the text: "> n_max" when not reached, "<= n" when met at the smallest size."""
    if not np.isfinite(value):
        return f"> {n_max}"
    return f"<= {value:.0f}" if censored == "left" else f"{value:.3g}"


def format_interval(low: float, high: float, bound: float, digits: int = 3, zero_bound: float | None = None) -> str:
    """``[low, high]`` with an infinite end written as beyond ``bound`` (the largest value the sweep can show)
    and, with ``zero_bound``, a zero end (a ratio where the method never reaches the target) as below it."""
    if math.isnan(low) or math.isnan(high):
        return "[n/a]"

    def end(x):
        if np.isinf(x):
            return f">{bound:.{digits}g}"
        if x == 0 and zero_bound is not None:
            return f"<{zero_bound:.{digits}g}"
        return f"{x:.{digits}g}"

    return f"[{end(low)}, {end(high)}]"


def format_ratio(row: dict) -> str:
    ratio = row["ratio_vs_random"]
    if math.isnan(ratio):
        return "n/a"
    if np.isinf(ratio):
        return f"> {_ratio_bound(row):.2g}"
    if ratio == 0:  # the method never reaches the target within the sweep, the baseline does
        return f"< {_zero_ratio_bound(row):.2g}"
    return f"{ratio:.2g}"


def _zero_ratio_bound(row: dict) -> float:
    """What a zero ratio (the method never reaches the target, the baseline does) is below: the baseline's
    labels to target over the largest size."""
    return row["baseline_n_to_target"] / row["n_max"]


def _ratio_bound(row: dict) -> float:
    """What an infinite ratio (the baseline never reaches the target) is at least: the largest size over
    the method's labels to target."""
    n = row["n_to_target"]
    return row["n_max"] / n if np.isfinite(n) and n > 0 else row["n_max"] / max(row["n_min"], 1)


def verdict_markdown(table, comparisons, summary, settings: dict, full=None) -> str:
    """The verdict's text: per (system, labeller) a sentence per target and one table, then what the paired
    tests allow, then the upper-bound arm (``full``: its summary rows) if it ran; every number in it comes
    from ``table`` (:func:`labels_to_target`), ``comparisons`` and those rows."""
    from .comparisons import seeds_needed

    from .comparisons import BLOCK, with_pool

    baseline = settings["baseline_method"]
    summary, table = with_pool(summary), with_pool(table)
    comparisons = with_pool(comparisons) if len(comparisons) else comparisons
    full = with_pool(full) if full is not None and len(full) else full
    several_pools = summary["pool"].nunique() > 1
    lines = ["# Verdict", ""]
    for (system, labeller, pool), block in table.groupby(BLOCK, sort=True):
        data = summary[(summary["system"] == system) & (summary["labeller"] == labeller) & (summary["pool"] == pool)]
        seeds = sorted(data["seed"].unique())
        sizes = sorted(data["n_train"].unique())
        lines += [f"## {system}, {labeller} labels" + (f", pool {pool}" if several_pools else ""), "",
                  f"{_model_sentence(data)}{len(seeds)} seed(s) ({', '.join(str(s) for s in seeds)}), training-set sizes "
                  f"{', '.join(str(n) for n in sizes)}, methods {', '.join(sorted(block['method'].unique()))}. "
                  f"Intervals: {100 * CONFIDENCE:g} %, percentile bootstrap over whole seeds ({settings['n_bootstrap']} "
                  "resamplings).", ""]
        if len(seeds) < 2:
            lines += ["**One seed: the intervals below are not uncertainties** (a resampling of one seed is that "
                      "seed). Add seeds (`sweep.seeds`) before reading a difference between methods.", ""]
        for target, rows in block.groupby("target", sort=False):
            rows = rows.set_index("method")
            base = rows.loc[baseline] if baseline in rows.index else None
            parts = []
            for method, row in rows.iterrows():
                r = row.to_dict()
                text = (f"{method} at {format_n(r['n_to_target'], r['censored'], r['n_max'])} "
                        f"{format_interval(r['n_low'], r['n_high'], r['n_max'])}")
                if base is not None and method != baseline and not math.isnan(r["ratio_vs_random"]):
                    text += (f" ({baseline} needs {format_ratio(r)}x as many, "
                             f"{format_interval(r['ratio_low'], r['ratio_high'], _ratio_bound(r), 2, _zero_ratio_bound(r))})")
                parts.append(text)
            lines += [f"- **{rows.iloc[0]['criterion']}**: " + "; ".join(parts) + " labels.", ""]
        lines += _verdict_table(block, baseline), ""
        pairs = comparisons[(comparisons["system"] == system) & (comparisons["labeller"] == labeller)
                            & (comparisons["pool"] == pool)] if len(comparisons) else comparisons
        lines += [_paired_sentence(pairs, settings["alpha"], seeds_needed(settings["alpha"], max(len(comparisons), 1))),
                  ""]
        if full is not None and len(full):
            lines += [_upper_bound_sentence(full[(full["system"] == system) & (full["labeller"] == labeller)
                                                 & (full["pool"] == pool)]), ""]
        if "al_qbc" in set(data["method"]):
            lines += [_active_learning_sentence(data[data["method"] == "al_qbc"]), ""]
    return "\n".join(lines)


def _active_learning_sentence(rows) -> str:
    """What the AL arm paid per budget beyond its labels: labels used (seed, calibration and picks), its
    iterations, the committees' training and the exploration (means over seeds), and early stops."""
    from .comparisons import device_hours

    parts = []
    for n, group in rows.groupby("n_train", sort=True):
        core, gpu = device_hours(group, "al_committee_train_device", "al_committee_train_time_s",
                                 "al_committee_train_threads")
        core, gpu = np.nansum(core) / len(group), gpu.sum() / len(group)  # per model, as cost.csv splits them
        explore = group["al_exploration_wall_s"].astype(float).mean() / 3600
        parts.append(f"n = {n}: {group['n_labels'].astype(float).mean():.3g} labels used "
                     f"({group['al_iterations'].astype(float).mean():.2g} iterations), committee training "
                     f"{core:.3g} core-h" + (f" + {gpu:.3g} GPU-h" if gpu else "") + f", exploration {explore:.3g} h")
    stopped = rows[rows["al_stop_reason"].fillna("").astype(str) != ""]
    text = ("**Active learning** (al_qbc; its labels include the seed and calibration sets and every picked "
            "frame; one-shot methods pay none of the compute below): " + "; ".join(parts) + ".")
    if len(stopped):
        text += (f" The loop stopped before its budget in {len(stopped)} of {len(rows)} models, e.g. "
                 f"\"{stopped['al_stop_reason'].iloc[0]}\".")
    return text


def _model_sentence(data) -> str:
    """Which model and validation protocol the numbers belong to (repulsion, NVT length and state point)."""
    parts = []
    if "repulsion" in data and data["repulsion"].notna().any():
        kinds = sorted(set(data["repulsion"].dropna()))
        parts.append("SchNet " + " / ".join("with the ZBL wall" if k == "zbl" else "without a repulsive prior"
                                            if k == "none" else k for k in kinds))
    if "nvt_duration_fs" in data and data["nvt_duration_fs"].notna().any():
        parts.append(f"NVT {data['nvt_duration_fs'].max() / 1000:g} ps")
    if "nvt_density_source" in data and data["nvt_density_source"].notna().any():
        parts.append(f"at {data['nvt_temperature_K'].max():g} K and {data['nvt_density_g_cm3'].max():.4g} g/cm^3 "
                     f"({data['nvt_density_source'].dropna().iloc[0]})")
    return ("; ".join(parts) + ". ") if parts else ""


def _upper_bound_sentence(rows) -> str:
    """What the model trained on the whole pool reaches: if it misses a target, no selection will."""
    if not len(rows):
        return ""
    k = len(rows)
    stable = rows["stable"].astype(bool)
    for column in ("stress_stable", "npt_stable"):
        if column in rows:
            stable &= rows[column].fillna(False).astype(bool)
    l4 = rows["force_l4_eV_A"].astype(float)
    return (f"**Upper bound** (method full, n = {int(rows['n_train'].max())}, the whole pool): force L4 "
            f"{l4.mean():.3g} eV/A (mean of {k} seed(s)), stable NVT, stress and NPT in {int(stable.sum())} of {k}. "
            "A target the upper bound misses is the model's limit, not the selection's.")


def _verdict_table(block, baseline: str) -> str:
    targets = list(dict.fromkeys(block["target"]))
    head = "| method | " + " | ".join(block[block["target"] == t]["criterion"].iloc[0] for t in targets) + \
        " | labeller core-hours to stable MD |"
    lines = [head, "|" + " --- |" * (len(targets) + 2)]
    for method, rows in block.groupby("method", sort=True):
        rows = rows.set_index("target")
        cells = []
        for t in targets:
            r = rows.loc[t].to_dict()
            cell = f"{format_n(r['n_to_target'], r['censored'], r['n_max'])} {format_interval(r['n_low'], r['n_high'], r['n_max'])}"
            if method != baseline and not math.isnan(r["ratio_vs_random"]):
                cell += f"; ratio {format_ratio(r)}"
            cells.append(cell)
        hours = rows.loc["stable_md"]["labeller_core_hours_to_target"] if "stable_md" in rows.index else math.nan
        cells.append("n/a" if math.isnan(hours) else ("not reached" if np.isinf(hours) else f"{hours:.3g}"))
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _paired_sentence(pairs, alpha: float, needed: int) -> str:
    if not len(pairs):
        return "Paired tests: only one method, nothing to compare."
    if (pairs["outcome"] == "too few seeds").all():
        return (f"Paired tests (exact Wilcoxon signed-rank on the force L4 error, Holm-corrected over "
                f"{len(pairs)} comparisons): with at most {int(pairs['n_pairs'].max())} shared seed(s) no paired "
                f"claim is possible at alpha = {alpha:g}; it needs at least {needed} seeds.")
    found = pairs[pairs["outcome"].str.endswith(" lower")]
    text = (f"Paired tests (exact Wilcoxon signed-rank on the force L4 error, Holm-corrected over {len(pairs)} "
            f"comparisons, alpha = {alpha:g}): ")
    if not len(found):
        return text + "no significant difference at any size."
    return text + "; ".join(f"{r['outcome']} at n = {r['n_train']} (p = {r['p_holm']:.2g})"
                            for r in found.to_dict("records")) + "."
