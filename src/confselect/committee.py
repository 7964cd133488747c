"""Committees of the deployed SchNet model (003): members, their disagreement, the committee-mean calculator
and the calibration of the disagreement threshold.

A committee is K SchNet models trained like the deployed model, each on all but one fold of a K-fold split
of the same labels (003: "an ensemble of L = 5 ANI potentials trained to a 5-fold cross-validation split"),
each with its own weight initialisation.  Per frame the committee gives

* 003's rho = sigma_E / sqrt(N) (eV): the standard deviation of the members' energies over sqrt(atoms);
* the force disagreement per atom, the root mean square over members of |F_k - F_mean| (eV/A), as its
  largest (``force_disagreement_max_eV_A``) and mean (``force_disagreement_mean_eV_A``) over the atoms.

On frames with labels the committee's errors are 003's epsilon = max_k |E_k - E_ref| / sqrt(N) (eV) and the
largest per-atom error of the committee-mean force (eV/A).  :func:`calibrate` picks the threshold as 003's
Fig. 1 does: the largest value that still flags a configured fraction of the frames whose error exceeds
epsilon.  Units are ASE's (eV, A).
"""

from __future__ import annotations

import math

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

#: per-frame disagreement records (eV, eV/A)
DISAGREEMENT_KEYS = ("rho_eV", "force_disagreement_max_eV_A", "force_disagreement_mean_eV_A")
#: per-frame error records against labels (eV, eV/A)
ERROR_KEYS = ("energy_error_eV", "force_error_max_eV_A")


def member_training_indices(n_frames: int, n_members: int, seed: int) -> list[np.ndarray]:
    """The training frames of each member: all but one fold of a seeded K-fold split (ascending indices).

    With fewer frames than members some folds are empty and those members train on every frame."""
    order = np.random.default_rng([int(seed), 7919]).permutation(int(n_frames))
    folds = np.array_split(order, int(n_members))
    return [np.sort(np.setdiff1d(order, fold)) for fold in folds]


def member_seed(seed: int, member: int) -> int:
    """The training seed of committee member ``member`` of a sweep seed (weights, batch order)."""
    return int(np.random.SeedSequence([int(seed), int(member)]).generate_state(1)[0] % (2**31 - 1))


def train_member(frames, member: int, size: int, seed: int, training: dict, workdir):
    """Train committee member ``member`` of ``size`` on its folds of ``frames`` with the deployed model's
    ``training`` settings (the config's section, threads included) into ``workdir``; returns (model, record)
    with the record holding the member, its training rows and the trainer's record."""
    from .training import SchNetTrainer

    rows = member_training_indices(len(frames), size, seed)[member]
    trainer = SchNetTrainer(**{**training, "seed": member_seed(seed, member)})
    model = trainer.fit([frames[i] for i in rows], workdir)
    return model, {"member": member, "training_rows": rows.tolist(), "n_training_labels": len(frames), **trainer.record}


def model_uncertainty(members, model, frames) -> dict:
    """A model's committee uncertainty on labelled ``frames`` (the held-out set): the members' mean
    disagreement (:func:`disagreement`) and its Spearman correlation with the model's own errors, 003's
    |E - E_ref| / sqrt(N) (eV) against rho and the largest per-atom force error against the largest per-atom
    force disagreement.  ``members``, ``model``: ASE calculators."""
    from scipy.stats import spearmanr

    n_atoms = [len(a) for a in frames]
    spread = disagreement(*predict(members, frames), n_atoms)
    energies, forces = predict([model], frames)
    errors = committee_errors(energies, forces, [a.get_potential_energy() for a in frames],
                              [a.get_forces() for a in frames], n_atoms)
    out = {"n_frames": len(frames), "committee_size": len(members)}
    for key, values in spread.items():
        out[f"mean_{key}"] = float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
    for name, (value, error) in {"energy": ("rho_eV", "energy_error_eV"),
                                 "force": ("force_disagreement_max_eV_A", "force_error_max_eV_A")}.items():
        keep = np.isfinite(spread[value]) & np.isfinite(errors[error])
        out[f"{name}_error_spearman"] = (float(spearmanr(spread[value][keep], errors[error][keep])[0])
                                         if keep.sum() > 2 and np.ptp(spread[value][keep]) > 0 else math.nan)
    return out


def disagreement(energies, forces, n_atoms) -> dict:
    """Disagreement per frame from the members' predictions: ``energies`` (K, F) eV, ``forces`` a list of
    F arrays (K, N_f, 3) eV/A (frames may differ in size), ``n_atoms`` (F,).  Arrays of :data:`DISAGREEMENT_KEYS`.

    Non-finite predictions give NaN for that frame (the caller records them; nothing raises)."""
    energies = np.asarray(energies, dtype=float)
    n_atoms = np.asarray(n_atoms, dtype=float)
    with np.errstate(invalid="ignore", over="ignore"):
        rho = energies.std(axis=0) / np.sqrt(n_atoms)
        per_atom = [np.sqrt(((f - f.mean(axis=0)) ** 2).sum(axis=2).mean(axis=0)) for f in map(np.asarray, forces)]
    return {"rho_eV": rho,
            "force_disagreement_max_eV_A": np.array([a.max() if np.isfinite(a).all() else np.nan for a in per_atom]),
            "force_disagreement_mean_eV_A": np.array([a.mean() if np.isfinite(a).all() else np.nan for a in per_atom])}


def committee_errors(energies, forces, reference_energies, reference_forces, n_atoms) -> dict:
    """Errors of the committee on labelled frames: 003's epsilon = max_k |E_k - E_ref| / sqrt(N) (eV) and the
    largest per-atom |F_mean - F_ref| (eV/A); arrays of :data:`ERROR_KEYS`."""
    energies = np.asarray(energies, dtype=float)
    with np.errstate(invalid="ignore", over="ignore"):
        energy = np.abs(energies - np.asarray(reference_energies, dtype=float)).max(axis=0) / np.sqrt(
            np.asarray(n_atoms, dtype=float))
        force = np.array([np.linalg.norm(np.asarray(f).mean(axis=0) - np.asarray(ref), axis=1).max()
                          for f, ref in zip(forces, reference_forces)])
    return {"energy_error_eV": energy, "force_error_max_eV_A": force}


def calibrate(values, errors, error_limit: float, flagged_fraction: float) -> dict:
    """003 Fig. 1: the threshold on ``values`` (a disagreement per frame) that flags at least
    ``flagged_fraction`` of the frames whose error exceeds ``error_limit`` (a frame is flagged where its
    value is *above* the threshold).  Of the thresholds that flag the same frames the largest is returned
    (half-way to the next value below), so that exploration stops as late as the calibration allows.

    Returns ``threshold``, ``reason`` ("" or why no frame set it), counts (``n_frames``, ``n_bad``,
    ``n_nonfinite``: frames whose value or error is not finite, left out), what the threshold achieves on
    the set (``recall``: flagged fraction of the bad frames, ``flagged``: of all frames, the RMS error of the
    flagged and unflagged frames), the Spearman and Pearson correlations of value and error, and the curve
    (every distinct value as a threshold with the recall and flagged fraction it gives)."""
    from scipy.stats import pearsonr, spearmanr

    values, errors = np.asarray(values, dtype=float), np.asarray(errors, dtype=float)
    finite = np.isfinite(values) & np.isfinite(errors)
    out = {"error_limit": float(error_limit), "target_fraction": float(flagged_fraction),
           "n_frames": int(finite.sum()), "n_nonfinite": int((~finite).sum()), "reason": ""}
    values, errors = values[finite], errors[finite]
    bad = errors > error_limit
    out["n_bad"] = int(bad.sum())
    if not len(values):
        return {**out, "threshold": math.nan, "reason": "no calibration frame with a finite disagreement and error",
                "recall": math.nan, "flagged": math.nan, "spearman": math.nan, "pearson": math.nan,
                "curve": {"threshold": [], "recall": [], "flagged": []}}
    if bad.any():
        need = max(1, math.ceil(flagged_fraction * bad.sum() - 1e-9))
        kth = np.sort(values[bad])[::-1][need - 1]  # flagged are those above the threshold: stay below kth
        below = values[values < kth]
        threshold = 0.5 * (kth + below.max()) if len(below) else 0.5 * kth
    else:  # every calibration frame is predicted within the limit: flag only what is beyond all of them
        threshold = float(values.max())
        out["reason"] = f"no calibration frame has an error above {error_limit:g}: threshold at the largest value"
    flagged = values > threshold
    candidates = np.unique(np.concatenate([[min(0.0, values.min())], values]))  # from "flag everything" up
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = [float((values[bad] > t).mean()) if bad.any() else math.nan for t in candidates]
    correlation = len(values) > 2 and np.ptp(values) > 0 and np.ptp(errors) > 0
    return {**out, "threshold": float(threshold),
            "recall": float(flagged[bad].mean()) if bad.any() else math.nan, "flagged": float(flagged.mean()),
            "rms_error_flagged": _rms(errors[flagged]), "rms_error_unflagged": _rms(errors[~flagged]),
            "spearman": float(spearmanr(values, errors)[0]) if correlation else math.nan,
            "pearson": float(pearsonr(values, errors)[0]) if correlation else math.nan,
            "curve": {"threshold": candidates.tolist(), "recall": recall,
                      "flagged": [float((values > t).mean()) for t in candidates]}}


def _rms(x) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if len(x) else math.nan


class CommitteeCalculator(Calculator):
    """ASE calculator of the committee mean (003 Sec. IIE: energy and forces averaged over the members) that
    also reports the members' energies and the disagreement of the current configuration
    (``results["committee_energies"]`` and the keys of :data:`DISAGREEMENT_KEYS`).

    ``members``: ASE calculators (the workflow passes one :class:`confselect.calculator.SchNetCalculator` per
    member model)."""

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, members, **kwargs):
        super().__init__(**kwargs)
        if len(members) < 2:
            raise ValueError(f"a committee needs at least 2 members, got {len(members)}")
        self.members = list(members)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        energies, forces = [], []
        for member in self.members:
            probe = self.atoms.copy()
            probe.calc = member
            energies.append(probe.get_potential_energy())
            forces.append(probe.get_forces())
        energies, forces = np.asarray(energies), np.asarray(forces)
        spread = disagreement(energies[:, None], [forces], [len(self.atoms)])
        self.results = {"energy": float(energies.mean()), "free_energy": float(energies.mean()),
                        "forces": forces.mean(axis=0), "committee_energies": energies,
                        **{k: float(v[0]) for k, v in spread.items()}}


def predict(members, frames) -> tuple[np.ndarray, list]:
    """Every member's energies (K, F) and forces (F arrays (K, N, 3)) on ``frames`` (ASE Atoms)."""
    energies = np.empty((len(members), len(frames)))
    forces = [np.empty((len(members), len(atoms), 3)) for atoms in frames]
    for k, member in enumerate(members):
        for f, atoms in enumerate(frames):
            probe = atoms.copy()
            probe.calc = member
            try:
                energies[k, f], forces[f][k] = probe.get_potential_energy(), probe.get_forces()
            except (FloatingPointError, ValueError, RuntimeError):  # a member that breaks on a frame: NaN
                energies[k, f], forces[f][k] = np.nan, np.nan
    return energies, forces
