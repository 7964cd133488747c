"""Exploration for query-by-committee active learning: where the committee does not agree.

* :func:`explore_md` is 003's "K random trajectory sampling": ML-MD driven by the committee mean
  (:class:`confselect.committee.CommitteeCalculator`), one trajectory per start and temperature, each stopped
  at its first checked frame whose disagreement is above the threshold; that frame is the trajectory's
  candidate.  A trajectory that blows up (non-finite values, which a member's non-finite prediction makes of
  the committee mean; a force above the ceiling; atoms too close: :func:`confselect.dynamics.run_md`'s checks)
  is recorded and gives no candidate.
* :func:`explore_pool` is the alternative of 003's data-set reduction: rank the unlabelled classical pool
  frames by disagreement and keep those above the threshold.

Both return per-trajectory (or per-pool) records, the candidates (frames with their disagreement in
``info``) and the number of frames checked, from which the loop's stopping rule reads the uncertain fraction.
"""

from __future__ import annotations

import math

import numpy as np

from .committee import DISAGREEMENT_KEYS, disagreement, predict

#: stop reason of a trajectory at its first uncertain frame
UNCERTAIN = "uncertain"


def trajectory_temperatures(n: int, low_K: float, high_K: float, rng) -> np.ndarray:
    """``n`` temperatures (K) spread over [low_K, high_K]: one uniform draw in each of n equal strata."""
    return low_K + (high_K - low_K) * (np.arange(n) + rng.random(n)) / max(n, 1)


class UncertaintyStop:
    """``run_md`` callback: stop at the first sample after the start whose committee disagreement (``key`` of
    the committee calculator's results) is above ``threshold``; keeps that frame and counts the checks."""

    def __init__(self, calculator, key: str, threshold: float):
        self.calculator, self.key, self.threshold = calculator, key, float(threshold)
        self.checked, self.frame, self.value, self.values = 0, None, math.nan, []

    def __call__(self, frame, values):
        if values["step"] == 0:  # the start is a pool frame: exploration judges where the dynamics goes
            return None
        # a non-finite prediction of any member makes the committee mean non-finite: run_md's stability check
        # has ended the run at that step, before this callback (reason "non-finite values")
        value = float(self.calculator.results[self.key])
        self.checked += 1
        self.values.append(value)
        if value > self.threshold:
            self.frame, self.value = frame, value
            self.measures = {k: float(self.calculator.results[k]) for k in DISAGREEMENT_KEYS}
            return f"{UNCERTAIN}: {self.key} {value:.4g} > {self.threshold:.4g}"
        return None


def explore_md(committee, starts, temperatures_K, threshold: float, key: str, duration_fs: float,
               timestep_fs: float, check_interval_fs: float, limits, seed: int, log=print):
    """One NVT trajectory per (start, temperature) with the committee-mean calculator ``committee``.

    ``starts``: (label, Atoms) pairs; ``limits``: :class:`confselect.stability.StabilityThresholds` (its
    force ceiling and closest approach end a trajectory that blows up).  Returns (records, candidates,
    n_checked): a record per trajectory, the stopping frames above the threshold (wrapped into the cell,
    no calculator, ``info`` with the disagreement, trajectory, temperature and time) and the number of
    disagreement checks made (the explored frames)."""
    from .dynamics import run_md

    steps = max(1, round(duration_fs / timestep_fs))
    every = max(1, round(check_interval_fs / timestep_fs))
    records, candidates, checked = [], [], 0
    for j, ((label, start), temperature) in enumerate(zip(starts, temperatures_K)):
        atoms = start.copy()
        atoms.calc = None
        stop = UncertaintyStop(committee, key, threshold)
        result = run_md(atoms, committee, "nvt", steps=steps, timestep_fs=timestep_fs,
                        temperature_K=float(temperature), sample_every=every, callback=stop, seed=seed + j,
                        max_force_eV_A=limits.max_force_eV_A, min_distance_A=limits.min_distance_A)
        checked += stop.checked
        uncertain = stop.frame is not None
        records.append({"trajectory": j, "start": label, "temperature_K": float(temperature),
                        "steps": int(result.steps), "time_fs": float(result.steps * timestep_fs),
                        "stop_reason": result.stop_reason or "ran through, never uncertain",
                        "uncertain": uncertain, "value_at_stop": stop.value if uncertain else None,
                        "max_value": float(np.nanmax(stop.values)) if np.isfinite(stop.values).any() else None,
                        "checks": stop.checked, "wall_s": float(result.wall_time_s)})
        if uncertain:
            frame = stop.frame.copy()
            frame.calc = None
            frame.set_momenta(None)
            frame.wrap()
            frame.info = {**stop.measures, "al_trajectory": j, "al_start": label,
                          "temperature_K": float(temperature), "time_fs": float(stop.frame.info.get("time_fs", 0.0))}
            candidates.append(frame)
        log(f"trajectory {j + 1}/{len(starts)} at {temperature:.0f} K from {label}: {records[-1]['stop_reason']} "
            f"after {records[-1]['time_fs']:.0f} fs")
    return records, candidates, checked


def explore_pool(members, frames, pool_indices, threshold: float, key: str):
    """Disagreement of the members on the unlabelled pool ``frames`` (pool indices ``pool_indices``);
    returns (record, candidates above the threshold with ``pool_index`` and the disagreement in ``info``,
    number of frames checked)."""
    energies, forces = predict(members, frames)
    spread = disagreement(energies, forces, [len(a) for a in frames])
    values = spread[key]
    finite = np.isfinite(values)
    candidates = []
    for i in np.flatnonzero(finite & (values > threshold)):
        frame = frames[i].copy()
        frame.calc = None
        frame.info = {**{k: float(v[i]) for k, v in spread.items()}, "pool_index": int(pool_indices[i])}
        candidates.append(frame)
    record = {"frames": len(frames), "nonfinite": int((~finite).sum()), "uncertain": len(candidates),
              "max_value": float(values[finite].max()) if finite.any() else None}
    return record, candidates, int(finite.sum())


def most_uncertain(candidates, key: str, n: int) -> list:
    """The ``n`` candidates of largest disagreement (stable: earlier trajectories first on ties)."""
    order = sorted(range(len(candidates)), key=lambda i: -candidates[i].info[key])
    return [candidates[i] for i in order[: max(0, int(n))]]
