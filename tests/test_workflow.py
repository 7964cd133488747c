"""The real workflow end to end on a tiny configuration, and Snakemake's rerun plan after it.

Everything runs for real: LAMMPS pool MD, untrained SchNet descriptors, selection, LAMMPS teacher labels,
SchNetPack training (3 epochs), ASE ML-MD, the report.
"""

import json
import math

import numpy as np

import pandas as pd
import pytest
import yaml

from conftest import TINY, planned_jobs, snakemake

pytestmark = pytest.mark.workflow
TINY_CONFIG = yaml.safe_load(TINY.read_text())


def test_every_registered_method_runs_through_to_the_report(tiny_run):
    from confselect.selection import METHODS

    summary = pd.read_csv(tiny_run / "results/report/summary.csv")
    assert set(summary["method"]) == set(METHODS) == set(TINY_CONFIG["sweep"]["methods"])


def test_summary_has_one_row_per_model_with_physical_errors(tiny_run):
    summary = pd.read_csv(tiny_run / "results/report/summary.csv")
    sweep = TINY_CONFIG["sweep"]
    expected = {(m, n, s) for m in sweep["methods"] for n in sweep["n_train"] for s in sweep["seeds"]}
    assert set(zip(summary["method"], summary["n_train"], summary["seed"])) == expected
    assert len(summary) == len(expected)
    assert (summary["system"] == "NaCl").all()
    assert summary["labeller"].str.startswith("classical-").all()
    # the teacher never fails, so every selected frame was trained on
    assert (summary["n_trained"] == summary["n_train"]).all()
    assert (summary["n_label_failures"] == 0).all()
    for column in ("energy_rmse_eV_atom", "force_rmse_eV_A", "force_l4_eV_A"):
        assert summary[column].gt(0).all() and summary[column].lt(50).all(), column
    # L4 weighs large deviations more, so it is never below the RMSE of the same errors
    assert (summary["force_l4_eV_A"] >= summary["force_rmse_eV_A"]).all()
    assert summary["stable"].isin([True, False]).all()
    assert summary["time_survived_fs"].between(0, TINY_CONFIG["validation"]["md"]["duration_fs"]).all()
    # a larger prefix of the same selection covers the pool at least as well
    for method, group in summary.groupby("method"):
        group = group.sort_values("n_train")
        assert group["coverage_max_min_distance"].is_monotonic_decreasing, method
    assert (tiny_run / "results/report/learning_curve.png").stat().st_size > 10_000


def test_each_selected_frame_is_labelled_once(tiny_run):
    """Label jobs = |union of the selections' frames| (+ the test frames), whatever overlaps between methods."""
    n_max = max(TINY_CONFIG["sweep"]["n_train"])
    union = set()
    for sel in (tiny_run / "results/NaCl/selection").glob("*/seed*.json"):
        indices = json.loads(sel.read_text())["indices"]
        assert len(indices) == n_max == len(set(indices))
        union |= set(indices[:n_max])
    label_dirs = list((tiny_run / "results/NaCl/labels").iterdir())
    assert len(label_dirs) == 1
    pool_labels = sorted(int(p.stem) for p in (label_dirs[0] / "pool").glob("*.extxyz"))
    assert pool_labels == sorted(union)
    n_test = int(TINY_CONFIG["test"]["ramp_fs"] // TINY_CONFIG["test"]["frame_interval_fs"])
    assert len(list((label_dirs[0] / "test").glob("*.extxyz"))) == n_test
    store = list((tiny_run / "results/label_store").rglob("*.extxyz"))
    assert len(store) == len(union) + n_test


def test_reference_observables_are_physical(tiny_run):
    ref = json.loads((tiny_run / "results/NaCl/reference/nvt.json").read_text())
    r = np.asarray(ref["rdf"]["r"])
    g = np.asarray(ref["rdf"]["Na-Cl"])
    assert 2.3 < r[np.argmax(g)] < 3.1  # Na-Cl contact peak of molten NaCl
    assert g[r < 1.8].max() == 0.0  # no ions inside the Born repulsion
    for species in ("Na", "Cl"):
        d = ref["diffusion"][species]["D_1e-9_m2_s"]
        assert 0.5 < d < 100, (species, d)  # molten NaCl: ~10 (1e-9 m^2/s)
    assert ref["conductivity"]["sigma_S_cm"] > 0 and ref["conductivity"]["sigma_NE_S_cm"] > 0
    diffusion = pd.read_csv(tiny_run / "results/report/diffusion.csv") if (
        tiny_run / "results/report/diffusion.csv").stat().st_size > 1 else pd.DataFrame()
    summary = pd.read_csv(tiny_run / "results/report/summary.csv")
    ran_through = summary[summary["D_Na_1e-9_m2_s"].notna()]
    assert len(diffusion) == 2 * len(ran_through)  # one row per species of each model that ran through
    assert (tiny_run / "results/report/rdf.png").stat().st_size > 10_000


def test_report_html_contains_figure(tiny_run):
    snakemake(tiny_run, "--report", "results/report/report.html")
    html = (tiny_run / "results/report/report.html").read_text(errors="replace")
    assert "learning_curve.png" in html and "summary.csv" in html


def test_nothing_changed_plans_nothing(tiny_run):
    out = snakemake(tiny_run, "-n").stdout
    assert planned_jobs(out) == {}, out[-3000:]
    assert "Nothing to be done" in out


def test_training_change_plans_only_training_validation_and_report(tiny_run, tmp_path):
    override = tmp_path / "epochs.yaml"
    override.write_text(yaml.safe_dump({"training": {"epochs": TINY_CONFIG["training"]["epochs"] + 1}}))
    plan = planned_jobs(snakemake(tiny_run, "-n", configfiles=(TINY, override)).stdout)
    n_models = math.prod(len(TINY_CONFIG["sweep"][k]) for k in ("methods", "n_train", "seeds"))
    assert plan == {
        "train": n_models,
        "test_errors": n_models,
        "ml_md": n_models,
        "summary": 1,
        "learning_curve": 1,
        "observables_report": 1,
        "all": 1,
    }
