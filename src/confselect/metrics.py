"""Test-set errors as in 000: energy RMSE, force RMSE and the force L4 error.

Definitions (over all test frames; force errors over every Cartesian component of every atom):

    energy_rmse_eV_atom = sqrt(mean_frames(((E_model - E_ref) / N_atoms)^2))          eV/atom
    force_rmse_eV_A     = sqrt(mean_components((F_model - F_ref)^2))                  eV/A
    force_l4_eV_A       = (mean_components((F_model - F_ref)^4))^(1/4)               eV/A

The L4 error weighs large deviations more than the RMSE does; 000 reads it as a predictor of whether a
potential survives MD.  ``force_max_error_eV_A`` (largest component error) is reported alongside.
"""

from __future__ import annotations

import numpy as np


def force_errors(f_model, f_ref) -> dict:
    diff = np.concatenate([np.ravel(m) - np.ravel(r) for m, r in zip(f_model, f_ref)])
    return {
        "force_rmse_eV_A": float(np.sqrt(np.mean(diff**2))),
        "force_l4_eV_A": float(np.mean(diff**4) ** 0.25),
        "force_max_error_eV_A": float(np.max(np.abs(diff))),
    }


def energy_rmse_per_atom(e_model, e_ref, n_atoms) -> float:
    e_model, e_ref, n_atoms = (np.asarray(x, dtype=float) for x in (e_model, e_ref, n_atoms))
    return float(np.sqrt(np.mean(((e_model - e_ref) / n_atoms) ** 2)))


def test_set_errors(predict, frames) -> dict:
    """Errors of ``predict(atoms) -> (energy eV, forces eV/A)`` against the labels stored on ``frames``."""
    e_model, e_ref, f_model, f_ref, n_atoms = [], [], [], [], []
    for atoms in frames:
        energy, forces = predict(atoms)
        e_model.append(energy)
        f_model.append(forces)
        e_ref.append(atoms.get_potential_energy())
        f_ref.append(atoms.get_forces())
        n_atoms.append(len(atoms))
    result = {"energy_rmse_eV_atom": energy_rmse_per_atom(e_model, e_ref, n_atoms), "n_test_frames": len(frames)}
    result.update(force_errors(f_model, f_ref))
    return result
