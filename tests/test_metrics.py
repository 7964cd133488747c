"""Test-set error definitions (000): energy RMSE per atom, force RMSE and force L4."""

import numpy as np
import pytest

from confselect.metrics import energy_rmse_per_atom, force_errors


def test_force_errors_by_hand():
    ref = [np.zeros((2, 3))]
    model = [np.array([[1.0, 0, 0], [0, 0, 0]])]  # one component off by 1 eV/A of six
    errors = force_errors(model, ref)
    assert errors["force_rmse_eV_A"] == pytest.approx(np.sqrt(1 / 6))
    assert errors["force_l4_eV_A"] == pytest.approx((1 / 6) ** 0.25)
    assert errors["force_max_error_eV_A"] == 1.0


def test_l4_exceeds_rmse_for_outliers_and_equals_it_for_uniform_errors():
    uniform = force_errors([np.full((4, 3), 0.5)], [np.zeros((4, 3))])
    assert uniform["force_l4_eV_A"] == pytest.approx(uniform["force_rmse_eV_A"])
    spiky = np.zeros((4, 3))
    spiky[0, 0] = 3.0
    outlier = force_errors([spiky], [np.zeros((4, 3))])
    assert outlier["force_l4_eV_A"] > 1.5 * outlier["force_rmse_eV_A"]


def test_energy_rmse_is_per_atom():
    assert energy_rmse_per_atom([10.0, -10.0], [0.0, 0.0], [10, 20]) == pytest.approx(np.sqrt((1 + 0.25) / 2))
