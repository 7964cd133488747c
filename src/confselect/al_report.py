"""The active-learning part of the report: the loop's course per iteration (``al_loop.csv``) and 003's Fig. 1
per iteration (``al_calibration.png``): on the held-out calibration labels, the fraction of badly predicted
frames flagged and the fraction of all frames flagged against the disagreement threshold, with the
threshold chosen, and the disagreement against the error with its rank correlation."""

from __future__ import annotations

import re
from pathlib import Path

from .jobs import read_json

_ITERATION = re.compile(r"(?P<system>[^/]+)/al/(?P<pool>[^/]+)/seed(?P<seed>\d+)/iter(?P<iteration>\d+)/exploration\.json$")

LOOP_COLUMNS = ("system", "pool", "seed", "iteration", "budget_before", "budget_after", "skipped", "threshold",
                "threshold_source", "criterion", "calibration_frames", "calibration_bad", "calibration_recall",
                "calibration_flagged", "calibration_spearman", "n_checked", "n_uncertain", "uncertain_fraction",
                "n_picks", "n_trajectories", "n_trajectories_failed", "stopped", "stop_reason",
                "committee_train_time_s", "exploration_wall_s")


def iteration_key(path) -> dict:
    match = _ITERATION.search(str(Path(path)))
    if not match:
        raise ValueError(f"not an AL iteration record: {path}")
    d = match.groupdict()
    return {"system": d["system"], "pool": d["pool"], "seed": int(d["seed"]), "iteration": int(d["iteration"])}


def loop_table(paths):
    """One row per AL iteration record (:data:`LOOP_COLUMNS`)."""
    import pandas as pd

    rows = []
    for path in paths:
        record = read_json(path)
        threshold = record.get("threshold") or {}
        calibration = threshold.get("calibration") or {}
        trajectories = record.get("trajectories") or []
        rows.append({**iteration_key(path), "budget_before": record["budget_before"],
                     "budget_after": record["budget_after"], "skipped": record.get("skipped", False),
                     "threshold": threshold.get("threshold"), "threshold_source": threshold.get("source"),
                     "criterion": threshold.get("key"), "calibration_frames": calibration.get("n_frames"),
                     "calibration_bad": calibration.get("n_bad"), "calibration_recall": calibration.get("recall"),
                     "calibration_flagged": calibration.get("flagged"),
                     "calibration_spearman": calibration.get("spearman"), "n_checked": record.get("n_checked"),
                     "n_uncertain": record.get("n_uncertain"), "uncertain_fraction": record.get("uncertain_fraction"),
                     "n_picks": record.get("n_picks", 0), "n_trajectories": len(trajectories),
                     "n_trajectories_failed": sum(1 for t in trajectories if not t["uncertain"]
                                                  and t["stop_reason"] != "ran through, never uncertain"),
                     "stopped": record.get("stopped", False), "stop_reason": record.get("stop_reason", ""),
                     "committee_train_time_s": record.get("committee_train_time_s"),
                     "exploration_wall_s": record.get("wall_s")})
    return pd.DataFrame(rows, columns=list(LOOP_COLUMNS)).sort_values(["system", "pool", "seed", "iteration"])


def plot_calibration(paths, path) -> None:
    """003 Fig. 1 for every calibrated iteration (rows: system, pool and seed; columns: iterations): left
    axis, the recall of badly predicted frames and the flagged fraction of all frames against the threshold
    (vertical line: the threshold chosen); inset text, Spearman's rho of disagreement and error."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = {}
    for p in paths:
        key, threshold = iteration_key(p), read_json(p).get("threshold") or {}
        calibration = threshold.get("calibration") or {}
        if calibration.get("curve", {}).get("threshold"):
            records.setdefault((key["system"], key["pool"], key["seed"]), {})[key["iteration"]] = (calibration,
                                                                                                  threshold)
    rows = sorted(records)
    ncols = max([len(v) for v in records.values()] or [1])
    fig, axes = plt.subplots(max(len(rows), 1), ncols, figsize=(4.2 * ncols, 3.4 * max(len(rows), 1)), squeeze=False)
    if not rows:
        axes[0][0].text(0.5, 0.5, "no calibrated iteration (fixed threshold, or the loop stopped first)",
                        ha="center", va="center", transform=axes[0][0].transAxes)
        axes[0][0].set_axis_off()
    for ax_row, key in zip(axes, rows):
        for ax, (iteration, (calibration, threshold)) in zip(ax_row, sorted(records[key].items())):
            curve = calibration["curve"]
            ax.step(curve["threshold"], curve["recall"], where="post", label="bad frames flagged")
            ax.step(curve["threshold"], curve["flagged"], where="post", label="all frames flagged")
            ax.axvline(threshold["threshold"], color="k", ls="--", lw=1,
                       label=f"threshold {threshold['threshold']:.3g} {threshold['unit']}")
            ax.set_ylim(-0.02, 1.02)
            ax.set_xlabel(f"{threshold['key']} threshold ({threshold['unit']})")
            ax.set_ylabel("fraction")
            ax.set_title(f"{key[0]} {key[1]} seed {key[2]}, iteration {iteration}", fontsize=9)
            spearman = calibration.get("spearman")
            ax.text(0.02, 0.04, f"{calibration['n_bad']}/{calibration['n_frames']} above limit; Spearman "
                                + ("n/a" if spearman is None or spearman != spearman else f"{spearman:.2f}"),
                    transform=ax.transAxes, fontsize=7)
        ax_row[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
