"""What labels, training and ML-MD cost, from what the jobs recorded."""

import math

import pandas as pd
import pytest
from ase import Atoms
from ase.io import write

from confselect.comparisons import cost_table
from confselect.cost import label_cost, planned_label_cost


def test_label_cost_sums_wall_time_times_threads_including_failed_attempts(tmp_path):
    from ase.io import read

    paths = []
    for k, (seconds, threads, status) in enumerate([(36.0, 4, "ok"), (72.0, 2, "failed"), (18.0, None, "ok")]):
        atoms = Atoms("NaCl", positions=[[0, 0, 0], [2.8, 0, 0]], cell=[6, 6, 6], pbc=True)
        atoms.info.update(label_wall_time_s=seconds, label_status=status)
        if threads:
            atoms.info["label_threads"] = threads
        paths.append(tmp_path / f"{k}.extxyz")
        write(paths[-1], atoms, format="extxyz")
    cost = label_cost([read(path, format="extxyz") for path in paths])  # as the label files store them
    assert cost["label_wall_time_s"] == pytest.approx(126.0)
    assert cost["label_core_hours"] == pytest.approx((36 * 4 + 72 * 2 + 18 * 1) / 3600)
    assert cost["labels_threads_assumed"] == 1 and cost["labels_without_wall_time"] == 0


def test_planned_cost_uses_the_single_point_at_the_campaigns_cutoff():
    rows = [{"cutoff_Ry": c, "wall_time_s": w, "threads": 8} for c, w in ((400, 100.0), (800, 450.0), (1200, 900.0))]
    estimate = planned_label_cost(rows, 700.0, 50, 250)
    assert estimate["cutoff_Ry"] == 800 and estimate["core_hours_per_label"] == pytest.approx(1.0)
    assert (estimate["core_hours_min"], estimate["core_hours_max"]) == pytest.approx((50.0, 250.0))
    with pytest.raises(ValueError, match="cutoffs_Ry"):
        planned_label_cost(rows, 1400.0, 50, 250)


def test_cost_table_separates_cpu_core_hours_from_gpu_hours():
    summary = pd.DataFrame([
        {"system": "NaCl", "labeller": "x", "method": "rnd", "n_train": 8, "seed": s, "label_core_hours": 2.0 * (s + 1),
         "train_time_s": 3600.0, "train_threads": 2, "train_device": device, "md_wall_s": 1800.0, "npt_wall_s": 1800.0}
        for s, device in ((0, "cpu"), (1, "cpu"))
    ] + [{"system": "NaCl", "labeller": "x", "method": "random", "n_train": 8, "seed": 0, "label_core_hours": 1.0,
          "train_time_s": 1800.0, "train_threads": 1, "train_device": "cuda", "md_wall_s": 0.0, "npt_wall_s": 360.0}])
    table = cost_table(summary).set_index("method")
    assert table.loc["rnd", "label_core_hours"] == pytest.approx(3.0)
    assert table.loc["rnd", "train_core_hours"] == pytest.approx(2.0) and table.loc["rnd", "train_gpu_hours"] == 0
    assert table.loc["rnd", "mlmd_hours"] == pytest.approx(1.0) and table.loc["rnd", "n_seeds"] == 2
    assert math.isnan(table.loc["random", "train_core_hours"])
    assert table.loc["random", "train_gpu_hours"] == pytest.approx(0.5)


def test_ml_md_hours_not_recorded_stay_unknown_not_zero():
    summary = pd.DataFrame([{"system": "NaCl", "labeller": "x", "method": "rnd", "n_train": 8, "seed": 0,
                             "label_core_hours": 1.0, "train_time_s": 60.0, "train_threads": 1,
                             "md_wall_s": math.nan, "npt_wall_s": math.nan}])
    assert math.isnan(cost_table(summary).iloc[0]["mlmd_hours"])


def test_cost_table_charges_the_al_loop_to_its_arm_alone():
    """al_qbc pays for its committees (core-hours on the CPU, GPU-hours on CUDA) and its exploration; a one-shot
    arm pays none; labels used are n_labels (fewer than n where the loop stopped early)."""
    common = {"system": "NaCl", "labeller": "x", "n_train": 32, "label_core_hours": 1.0, "train_time_s": 60.0,
              "train_threads": 1, "md_wall_s": 1.0, "npt_wall_s": 1.0}
    summary = pd.DataFrame([
        {**common, "method": "random", "seed": 0, "n_labels": 32},
        {**common, "method": "al_qbc", "seed": 0, "n_labels": 32, "al_committee_train_time_s": 7200.0,
         "al_committee_train_threads": 2, "al_committee_train_device": "cpu", "al_exploration_wall_s": 1800.0},
        {**common, "method": "al_qbc", "seed": 1, "n_labels": 28, "al_committee_train_time_s": 3600.0,
         "al_committee_train_threads": 1, "al_committee_train_device": "cuda", "al_exploration_wall_s": 3600.0},
    ])
    table = cost_table(summary).set_index("method")
    assert table.loc["random", "al_committee_core_hours"] == 0 and table.loc["random", "al_exploration_hours"] == 0
    assert table.loc["random", "al_committee_gpu_hours"] == 0 and table.loc["random", "n_labels"] == 32
    assert table.loc["al_qbc", "n_labels"] == 30
    # seed 0: 2 h x 2 threads on the CPU; seed 1 on CUDA: its hour is GPU time, not CPU core time
    assert table.loc["al_qbc", "al_committee_gpu_hours"] == pytest.approx(0.5)
    assert table.loc["al_qbc", "al_exploration_hours"] == pytest.approx(0.75)
    assert table.loc["al_qbc", "al_committee_core_hours"] == pytest.approx(4.0)  # mean over the CPU seed alone
