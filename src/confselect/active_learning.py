"""One iteration of query-by-committee active learning (``al_qbc``) and the labels it builds on.

The workflow runs the loop as jobs with explicit outputs (``rules/active_learning.smk``):

    iteration i:  al_committee (K members on the labels so far)  ->  al_explore (calibrate, explore, pick)
                  ->  label (the picks, through the label store)  ->  iteration i + 1 ...

and trains the AL arm's model at each sweep size on the labels the loop holds there (rule ``train``).
This module holds what those jobs share: the AL labels (:func:`al_labels`: seed set, held-out calibration
set, picks), the threshold (:func:`iteration_threshold`) and one iteration (:func:`run_iteration`), whose
record says what it did and, where the loop ends, why.  Faults are results: a calibration without finite
values, a trajectory that explodes or whose committee gives non-finite values, an iteration with no uncertain
frame, non-finite disagreements in the pool; each
is recorded and either the loop goes on or it stops with the reason.  A failed label is a failure record in
the label files: training leaves it out and it still counts (and costs) as a label.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from .committee import calibrate, committee_errors, disagreement, predict
from .exploration import explore_md, explore_pool, most_uncertain, trajectory_temperatures
from .selection.al_qbc import CRITERIA


@dataclass
class ALLabels:
    """The labels of the AL arm at one point of the loop: training frames (seed set and picks) and the
    calibration frames, each with the failure records of the frames that could not be labelled."""

    train: list
    train_failed: list
    calibration: list
    calibration_failed: list
    n_picks: list = field(default_factory=list)  # frames picked per iteration (labelled or failed)

    @property
    def n_labels(self) -> int:
        """Labels paid for: every seed, calibration and picked frame, failed ones included."""
        return len(self.train) + len(self.train_failed) + len(self.calibration) + len(self.calibration_failed)


def al_labels(seed_files, pick_files, n_initial: int, n_calibration: int) -> ALLabels:
    """The seed set (first ``n_initial`` frames of the seed method's label batches), the calibration set (the
    next ``n_calibration``) and every frame of ``pick_files`` (each iteration's label batches, in order)."""
    from .training import labelled_frames

    train, failed = labelled_frames(seed_files, first=n_initial)
    calibration, calibration_failed = labelled_frames(seed_files, first=n_initial + n_calibration, skip=n_initial)
    labels = ALLabels(list(train), list(failed), list(calibration), list(calibration_failed))
    for path in pick_files:
        good, bad = labelled_frames(path)
        labels.train += good
        labels.train_failed += bad
        labels.n_picks.append(len(good) + len(bad))
    return labels


def iteration_threshold(al, members, calibration_frames) -> dict:
    """The threshold of this iteration's committee: ``al``'s fixed one, or calibrated on the labelled
    calibration frames (003 Fig. 1) with the per-frame disagreement and error recorded."""
    key, error_key, unit = CRITERIA[al.criterion]
    out = {"criterion": al.criterion, "key": key, "unit": unit}
    if calibration_frames:
        energies, forces = predict(members, calibration_frames)
        n_atoms = [len(a) for a in calibration_frames]
        spread = disagreement(energies, forces, n_atoms)
        errors = committee_errors(energies, forces, [a.get_potential_energy() for a in calibration_frames],
                                  [a.get_forces() for a in calibration_frames], n_atoms)
        out["calibration"] = {**calibrate(spread[key], errors[error_key], al.error_limit, al.flagged_fraction),
                              "frames": {**{k: v.tolist() for k, v in spread.items()},
                                         **{k: v.tolist() for k, v in errors.items()}}}
    if al.fixed_threshold is not None:
        out.update(threshold=float(al.fixed_threshold), source="fixed")
    elif calibration_frames:
        out.update(threshold=out["calibration"]["threshold"], source="calibrated")
    else:
        out.update(threshold=math.nan, source="calibration set has no label")
    return out


def _record(iteration) -> dict:
    return {"iteration": iteration.index, "budget_before": iteration.budget_before,
            "budget_after": iteration.budget_after, "max_picks": iteration.max_picks, "skipped": False}


def skipped_iteration(iteration, previous: dict) -> dict:
    """The record of an iteration after the loop stopped (``previous``: the last iteration's record): no
    committee, no exploration, no picks; the stop and its reason carried on."""
    return {**_record(iteration), "skipped": True, "stopped": True, "stopped_at": previous["stopped_at"],
            "stop_reason": previous["stop_reason"], "n_picks": 0}


def run_iteration(al, iteration, members, committee, calibration_frames, pool_frames, labelled_pool: set,
                  limits, temperature_range_K, log=print) -> tuple[dict, list]:
    """Calibrate, explore and pick for iteration ``iteration`` (:class:`confselect.selection.al_qbc.Iteration`).

    ``members``: the committee's calculators; ``committee``: their
    :class:`confselect.committee.CommitteeCalculator`; ``pool_frames``: the classical pool (MD starts, or
    the frames ranked in pool mode, less the ``labelled_pool`` indices); ``limits``:
    :class:`confselect.stability.StabilityThresholds` (a trajectory that breaks them ends there);
    ``temperature_range_K``: the trajectories' range unless ``al`` sets one.  Returns the record and the
    picked frames (at most ``iteration.max_picks``, largest disagreement first)."""
    record = _record(iteration)
    tick = time.perf_counter()
    threshold = iteration_threshold(al, members, calibration_frames)
    record["threshold"] = threshold
    key, value = threshold["key"], threshold["threshold"]
    if not math.isfinite(value):
        reason = (threshold.get("calibration") or {}).get("reason") or threshold["source"]
        return _stopped(record, f"no threshold: {reason}", tick), []
    rng = np.random.default_rng([al.seed, iteration.index])
    if al.explore == "md":
        n = al.trajectories or iteration.max_picks
        starts = [(f"pool frame {int(i)}", pool_frames[int(i)]) for i in rng.integers(0, len(pool_frames), n)]
        low, high = al.temperature_range_K or temperature_range_K
        records, candidates, checked = explore_md(
            committee, starts, trajectory_temperatures(n, low, high, rng), value, key, al.duration_fs,
            al.timestep_fs, al.check_interval_fs, limits, seed=int(rng.integers(2**31 - 1)), log=log)
        record["trajectories"] = records
    else:
        free = [i for i in range(len(pool_frames)) if i not in labelled_pool]
        pool_record, candidates, checked = explore_pool(members, [pool_frames[i] for i in free], free, value, key)
        record["pool"] = pool_record
    picks = most_uncertain(candidates, key, iteration.max_picks)
    for frame in picks:
        frame.info["al_iteration"] = iteration.index
    fraction = len(candidates) / checked if checked else 0.0
    record.update(n_checked=int(checked), n_uncertain=len(candidates), uncertain_fraction=fraction,
                  n_picks=len(picks), picked_values=[float(f.info[key]) for f in picks])
    if not candidates:
        return _stopped(record, f"no uncertain frame among {checked} explored", tick), []
    if fraction < al.stop_fraction:
        return _stopped(record, f"{fraction:.1%} of {checked} explored frames uncertain, below "
                                f"stop_fraction {al.stop_fraction:g}", tick), picks
    record.update(stopped=False, stop_reason="", wall_s=time.perf_counter() - tick)
    return record, picks


def _stopped(record: dict, reason: str, tick: float) -> dict:
    return {**record, "n_picks": record.get("n_picks", 0), "stopped": True, "stopped_at": record["iteration"],
            "stop_reason": reason, "wall_s": time.perf_counter() - tick}


def loop_summary(records) -> dict:
    """What the AL loop cost and did up to a model: the iteration records (``exploration.json``) of the
    iterations the model's labels come from, in order."""
    explored = [r for r in records if not r.get("skipped")]
    last = records[-1] if records else {}
    return {"al_iterations": len(explored),
            "al_stop_reason": last.get("stop_reason", "") if last.get("stopped") else "",
            "al_committee_train_time_s": float(sum(r.get("committee_train_time_s", 0.0) for r in records)),
            "al_committee_train_threads": max([r.get("committee_train_threads", 1) for r in records] or [1]),
            "al_committee_train_device": next((r["committee_train_device"] for r in explored
                                               if r.get("committee_train_device")), "cpu"),
            "al_exploration_wall_s": float(sum(r.get("wall_s", 0.0) for r in records)),
            "al_exploration_threads": max([r.get("exploration_threads", 1) for r in records] or [1]),
            "al_exploration_device": next((r["exploration_device"] for r in explored
                                           if r.get("exploration_device")), "cpu")}


def al_model_record(labels: ALLabels, records) -> dict:
    """The AL columns of a model's ``training.json``: labels paid for (seed, calibration and picks, failed
    ones included), the calibration set, and what the loop cost and did (:func:`loop_summary`)."""
    return {"n_labels": labels.n_labels, "n_calibration": len(labels.calibration) + len(labels.calibration_failed),
            "n_picked": int(sum(labels.n_picks)), **loop_summary(records)}


def arm_training_set(inputs, method: str, n: int, al_knobs: dict | None) -> tuple[list, list, dict, list]:
    """The training set of an arm's model at size ``n`` from its rule's inputs (``labels``: the selection's
    label batches; for al_qbc ``seed``, ``picks`` and ``records``): (frames, failure names, the AL columns
    of training.json, labels paid for but not trained on).  ``al_knobs``: ``selection.al_qbc``."""
    from .jobs import read_json
    from .selection import make_selector
    from .training import failure_record_at, labelled_frames

    if method != "al_qbc":
        frames, failed = labelled_frames(inputs.labels, first=int(n))  # the batches may hold more
        return frames, failed, {}, []
    al = make_selector("al_qbc", **(al_knobs or {}))
    labels = al_labels(inputs.seed, inputs.picks, al.n_initial, al.n_calibration)
    paid = [*labels.calibration, *(failure_record_at(name) for name in labels.calibration_failed)]
    return labels.train, labels.train_failed, al_model_record(labels, [read_json(p) for p in inputs.records]), paid
