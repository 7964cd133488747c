"""What a model cost: the labeller core-hours of its training labels, from what each label recorded.

Every label records its wall time (``label_wall_time_s``, every attempt of a retried calculation included)
and the threads it ran with (``label_threads``); a failure record carries the wall time of its attempts, so
a frame that could not be labelled still counts.  Labels written before ``label_threads`` was recorded
count as one thread and are counted in ``labels_threads_assumed``.
"""

from __future__ import annotations


def label_cost(labels) -> dict:
    """Wall time (s) and core-hours of ``labels``: label frames and failure records (ASE Atoms as the
    label files hold them; training passes the frames it has already read)."""
    wall_s = core_s = 0.0
    missing = assumed = 0
    for atoms in labels:
        info = atoms.info
        seconds = info.get("label_wall_time_s")
        if seconds is None:
            missing += 1
            continue
        if "label_threads" not in info:
            assumed += 1
        wall_s += float(seconds)
        core_s += float(seconds) * int(info.get("label_threads", 1))
    return {"label_wall_time_s": wall_s, "label_core_hours": core_s / 3600.0,
            "labels_without_wall_time": missing, "labels_threads_assumed": assumed}


def planned_label_cost(convergence_rows, cutoff_Ry: float, n_labels_min: int, n_labels_max: int) -> dict:
    """Core-hours of a labelling campaign before any label job, from the measured single points of the
    cutoff-convergence series (``cp2k_cutoff_convergence.csv``: ``cutoff_Ry``, ``wall_time_s`` and the
    ``threads`` they ran with): the run at the campaign's cutoff times the number of labels.  The count is a
    range until the selections exist: ``n_labels_min`` if every selection picks the same frames,
    ``n_labels_max`` if none overlap (each frame is labelled once, however many selections pick it)."""
    rows = sorted(convergence_rows, key=lambda r: float(r["cutoff_Ry"]))
    at = [r for r in rows if float(r["cutoff_Ry"]) >= float(cutoff_Ry) - 1e-9]
    if not at:
        raise ValueError(f"the cutoff series (up to {rows[-1]['cutoff_Ry']} Ry) does not reach the campaign's "
                         f"labelling.cp2k.cutoff_Ry = {cutoff_Ry} Ry: extend labelling.cp2k_convergence.cutoffs_Ry")
    measured = at[0]
    threads = int(measured.get("threads") or 1)
    per_label = float(measured["wall_time_s"]) * threads / 3600.0
    return {"cutoff_Ry": float(measured["cutoff_Ry"]), "measured_wall_time_s": float(measured["wall_time_s"]),
            "measured_threads": threads, "core_hours_per_label": per_label,
            "n_labels_min": int(n_labels_min), "n_labels_max": int(n_labels_max),
            "core_hours_min": per_label * n_labels_min, "core_hours_max": per_label * n_labels_max}
