"""Active learning by query by committee (003), as a sweep method: the settings and the label schedule.

Unlike the one-shot selectors, ``al_qbc`` does not order a pool: it runs as workflow iterations (rules in
``rules/active_learning.smk``): train a committee of the deployed SchNet model on the labels so far
(:mod:`confselect.committee`), explore with ML-MD driven by the committee mean and stop each trajectory at
its first frame above a calibrated disagreement threshold (:mod:`confselect.exploration`), label the
uncertain frames through the label store, retrain.  This class holds the loop's knobs (``selection.al_qbc``
in the config, checked at every parse like every selector's) and the schedule that ties the loop to the
sweep's label budgets; :meth:`select` refuses, naming the rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .base import PoolFeatures, SelectionError, Selector

#: disagreement criteria: name -> (disagreement key, error key, unit) of confselect.committee's records
CRITERIA = {"energy": ("rho_eV", "energy_error_eV", "eV"),
            "force": ("force_disagreement_max_eV_A", "force_error_max_eV_A", "eV/A")}
EXPLORATION = ("md", "pool")


@dataclass(frozen=True)
class Iteration:
    """One AL iteration: ``index`` (1, 2, ...), the label budget before it (``budget_before``: seed set,
    calibration set and the picks of earlier iterations) and after it, and ``max_picks`` =
    ``budget_after - budget_before`` new frames at most."""

    index: int
    budget_before: int
    budget_after: int

    @property
    def max_picks(self) -> int:
        return self.budget_after - self.budget_before


class ActiveLearningQBC(Selector):
    """Query-by-committee active learning with the deployed model's committees (003, "K random trajectory
    sampling"), run by the workflow.

    Labels counted against the budget: the seed set (the first ``n_initial`` frames of the ``initial``
    method's selection), the calibration set (its next ``n_calibration`` frames, labelled, never trained on)
    and every frame picked during exploration.  At a sweep size n the AL arm's model is trained, like every
    other arm's, on the training labels the loop holds when its label count first reaches n; sizes below
    ``n_initial + n_calibration`` have no AL model.

    Parameters
    ----------
    seed : the sweep seed: the seed set's selection, the committee members' splits and initial weights, the
        trajectories' starts, temperatures and velocities.
    committee_size : K members (default 5, as 003), each trained on all but one fold of a K-fold split of the
        training labels (003: 5-fold cross-validation) with its own weight initialisation.
    initial : one-shot method of the seed set and the calibration set (default "random"; "rnd" as 000).
    n_initial : labels of the seed set (default 8).
    n_calibration : labelled calibration frames, held out from training (default 8; 0 with a fixed threshold).
    frames_per_iteration : most new labels per iteration (default None: one iteration per sweep size).
    explore : "md" (ML-MD trajectories driven by the committee mean, each stopped at its first uncertain
        frame) or "pool" (rank the unlabelled classical pool frames by disagreement).
    trajectories : MD trajectories per iteration (default None: as many as frames the iteration may add).
    duration_fs : longest trajectory, fs (default 2000).
    timestep_fs : ML-MD time step, fs (default 2).
    check_interval_fs : the committee's disagreement is checked every this many fs (default 20).
    temperature_range_K : [low, high] trajectory temperatures, K, spread evenly over the trajectories
        (default None: the pool's MD temperature range).
    criterion : "energy" (003's rho = sigma_E / sqrt(N), eV) or "force" (largest per-atom standard deviation
        of the members' forces, eV/A).
    error_limit_eV : 003's epsilon for the energy criterion: a calibration frame is badly predicted where
        max_k |E_k - E_ref| / sqrt(N) exceeds it (default 0.01 eV).
    error_limit_eV_A : epsilon for the force criterion: largest per-atom |F_mean - F_ref| (default 0.5 eV/A).
    flagged_fraction : the threshold flags at least this fraction of the badly predicted calibration frames
        (default 0.9; 003 Fig. 1 uses 0.98).
    threshold_eV, threshold_eV_A : a fixed threshold instead of the calibrated one (needed where
        n_calibration is 0).
    stop_fraction : the loop stops when fewer than this fraction of the explored frames are uncertain
        (default 0.05, as 003's reduction step).
    """

    name = "al_qbc"
    requires = ()
    #: run by the workflow's active-learning rules, not by the select rule
    iterative = True
    #: the knobs that decide the seed and calibration sets (and, for the threshold's check, the criterion):
    #: all a model trained before the first iteration depends on
    SEED_SET_KNOBS = ("initial", "n_initial", "n_calibration", "criterion", "threshold_eV", "threshold_eV_A")

    def __init__(self, seed: int = 0, committee_size: int = 5, initial: str = "random", n_initial: int = 8,
                 n_calibration: int = 8, frames_per_iteration: int | None = None, explore: str = "md",
                 trajectories: int | None = None, duration_fs: float = 2000.0, timestep_fs: float = 2.0,
                 check_interval_fs: float = 20.0, temperature_range_K: list | None = None,
                 criterion: str = "energy", error_limit_eV: float = 0.01, error_limit_eV_A: float = 0.5,
                 flagged_fraction: float = 0.9, threshold_eV: float | None = None,
                 threshold_eV_A: float | None = None, stop_fraction: float = 0.05):
        super().__init__(seed)
        for key, value, low in (("committee_size", committee_size, 2), ("n_initial", n_initial, 1),
                                ("n_calibration", n_calibration, 0)):
            _integer(key, value, low)
        for key, value in (("frames_per_iteration", frames_per_iteration), ("trajectories", trajectories)):
            if value is not None:
                _integer(key, value, 1)
        for key, value in (("duration_fs", duration_fs), ("timestep_fs", timestep_fs),
                           ("check_interval_fs", check_interval_fs), ("error_limit_eV", error_limit_eV),
                           ("error_limit_eV_A", error_limit_eV_A)):
            if not (isinstance(value, (int, float)) and value > 0):
                raise SelectionError(f"al_qbc: {key} must be a positive number, got {value!r}")
        for key, value in (("threshold_eV", threshold_eV), ("threshold_eV_A", threshold_eV_A)):
            if value is not None and not (isinstance(value, (int, float)) and value >= 0):
                raise SelectionError(f"al_qbc: {key} must be a number >= 0, got {value!r}")
        if explore not in EXPLORATION:
            raise SelectionError(f"al_qbc: explore must be one of {EXPLORATION}, got {explore!r}")
        if criterion not in CRITERIA:
            raise SelectionError(f"al_qbc: criterion must be one of {sorted(CRITERIA)}, got {criterion!r}")
        for key, value in (("flagged_fraction", flagged_fraction), ("stop_fraction", stop_fraction)):
            if not (isinstance(value, (int, float)) and 0 <= value <= 1):
                raise SelectionError(f"al_qbc: {key} must be a fraction in [0, 1], got {value!r}")
        if temperature_range_K is not None:
            if len(temperature_range_K) != 2 or not 0 < temperature_range_K[0] <= temperature_range_K[1]:
                raise SelectionError(f"al_qbc: temperature_range_K must be [low, high] with 0 < low <= high, "
                                     f"got {temperature_range_K!r}")
            temperature_range_K = [float(t) for t in temperature_range_K]
        self.committee_size, self.initial, self.n_initial = int(committee_size), initial, int(n_initial)
        self.n_calibration = int(n_calibration)
        self.frames_per_iteration = None if frames_per_iteration is None else int(frames_per_iteration)
        self.explore, self.trajectories = explore, None if trajectories is None else int(trajectories)
        self.duration_fs, self.timestep_fs = float(duration_fs), float(timestep_fs)
        self.check_interval_fs, self.temperature_range_K = float(check_interval_fs), temperature_range_K
        self.criterion = criterion
        self.error_limit_eV, self.error_limit_eV_A = float(error_limit_eV), float(error_limit_eV_A)
        self.flagged_fraction, self.stop_fraction = float(flagged_fraction), float(stop_fraction)
        self.threshold_eV, self.threshold_eV_A = threshold_eV, threshold_eV_A
        if self.n_calibration == 0 and self.fixed_threshold is None:
            raise SelectionError(f"al_qbc: n_calibration is 0, so the threshold cannot be calibrated: set "
                                 f"{self.threshold_key} (criterion {criterion!r})")

    @property
    def threshold_key(self) -> str:
        return "threshold_eV" if self.criterion == "energy" else "threshold_eV_A"

    @property
    def fixed_threshold(self) -> float | None:
        """The configured threshold of the criterion (None: calibrate)."""
        return getattr(self, self.threshold_key)

    @property
    def error_limit(self) -> float:
        """Epsilon of the criterion (eV or eV/A)."""
        return self.error_limit_eV if self.criterion == "energy" else self.error_limit_eV_A

    @property
    def start_budget(self) -> int:
        """Labels before the first iteration: seed set and calibration set."""
        return self.n_initial + self.n_calibration

    def schedule(self, sizes) -> list[Iteration]:
        """The iterations that take the label count from :attr:`start_budget` up to the largest of ``sizes``,
        stopping at every size (and every ``frames_per_iteration`` labels between sizes)."""
        levels = sorted({int(n) for n in sizes if int(n) > self.start_budget})
        out, budget = [], self.start_budget
        for level in levels:
            while budget < level:
                step = min(level - budget, self.frames_per_iteration or math.inf)
                out.append(Iteration(len(out) + 1, budget, budget + int(step)))
                budget += int(step)
        return out

    def model_sizes(self, sizes) -> list[int]:
        """The sweep sizes at which the AL arm has a model (those its seed and calibration sets fit in)."""
        return sorted(int(n) for n in sizes if int(n) >= self.start_budget)

    def iterations_up_to(self, sizes, n: int) -> list[Iteration]:
        """The iterations whose picks a model at sweep size ``n`` trains on."""
        return [it for it in self.schedule(sizes) if it.budget_after <= int(n)]

    def select(self, pool: PoolFeatures, n: int):
        raise SelectionError("al_qbc labels as it goes and is run by the workflow's active-learning rules "
                             "(al_committee, al_explore), not as a pool selection")


def _integer(key: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SelectionError(f"al_qbc: {key} must be an integer >= {low}, got {value!r}")
