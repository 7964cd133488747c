"""The real workflow end to end on a tiny configuration, and Snakemake's rerun plan after it.

Everything runs for real: LAMMPS pool MD, untrained SchNet descriptors, selection, LAMMPS teacher labels,
SchNetPack training (3 epochs), ASE ML-MD, the report.
"""

import json
import math
import shutil

import numpy as np

import pandas as pd
import pytest
import yaml

from conftest import TINY, planned_jobs, snakemake

pytestmark = pytest.mark.workflow
TINY_CONFIG = yaml.safe_load(TINY.read_text())
N_POOL = int(TINY_CONFIG["pool"]["md"]["ramp_fs"] // TINY_CONFIG["pool"]["md"]["frame_interval_fs"])
# the upper-bound arm: one model per seed on every pool frame
FULL_MODELS = {("full", N_POOL, s) for s in TINY_CONFIG["sweep"]["seeds"]} if TINY_CONFIG["sweep"]["full"]["enabled"] else set()


def test_every_registered_method_runs_through_to_the_report(tiny_run):
    from confselect.selection import METHODS

    from confselect.crystal import CRYSTAL_COLUMNS

    summary = pd.read_csv(tiny_run / "results/report/summary.csv")
    assert set(summary["method"]) == set(METHODS) == set(TINY_CONFIG["sweep"]["methods"]) | {m for m, _, _ in FULL_MODELS}
    assert set(summary["pool"]) == {"md"}  # the one recipe of a single MD generator
    assert summary[list(CRYSTAL_COLUMNS)].isna().all().all()  # a liquid: the crystal columns are blank


def test_summary_has_one_row_per_model_with_physical_errors(tiny_run):
    summary = pd.read_csv(tiny_run / "results/report/summary.csv")
    sweep = TINY_CONFIG["sweep"]
    expected = {(m, n, s) for m in sweep["methods"] for n in sweep["n_train"] for s in sweep["seeds"]} | FULL_MODELS
    assert set(zip(summary["method"], summary["n_train"], summary["seed"])) == expected
    assert len(summary) == len(expected)
    assert (summary["system"] == "NaCl").all()
    assert summary["labeller"].str.startswith("classical-").all()
    # the teacher never fails, so every selected frame was trained on (the AL arm holds out its calibration set)
    one_shot = summary["method"] != "al_qbc"
    assert (summary.loc[one_shot, "n_trained"] == summary.loc[one_shot, "n_train"]).all()
    assert (summary["n_labels"] <= summary["n_train"]).all()
    assert (summary["n_label_failures"] == 0).all()
    for column in ("energy_rmse_eV_atom", "force_rmse_eV_A", "force_l4_eV_A"):
        assert summary[column].gt(0).all() and summary[column].lt(50).all(), column
    # L4 weighs large deviations more, so it is never below the RMSE of the same errors
    assert (summary["force_l4_eV_A"] >= summary["force_rmse_eV_A"]).all()
    assert summary["stable"].isin([True, False]).all()
    md = TINY_CONFIG["validation"]["md"]
    assert summary["time_survived_fs"].between(0, md["equilibration_fs"] + md["duration_fs"]).all()
    # a larger prefix of the same selection covers the pool at least as well
    # the full arm and active learning select no prefix of a pool ordering: no coverage
    for method, group in summary[~summary["method"].isin(["full", "al_qbc"])].groupby("method"):
        group = group.sort_values("n_train")
        assert group["coverage_max_min_distance"].is_monotonic_decreasing, method
    assert (tiny_run / "results/report/learning_curve.png").stat().st_size > 10_000


def test_each_selected_frame_is_labelled_once(tiny_run):
    """Every frame of the selections' union (and every test frame) is computed by exactly one label batch,
    whatever overlaps between methods; the others copy it from the store. Each selection's batches hold its
    frames in selection order, as many as its length."""
    from collections import Counter

    from ase.io import read

    n_max, batch = max(TINY_CONFIG["sweep"]["n_train"]), TINY_CONFIG["labelling"]["batch_size"]
    label_dirs = list((tiny_run / "results/NaCl/labels").iterdir())
    assert len(label_dirs) == 1
    union, computed = set(), Counter()
    for sel in (p for p in (tiny_run / "results/NaCl/selection/md").glob("*/seed*.json") if "coverage" not in p.name):
        indices = json.loads(sel.read_text())["indices"]
        length = N_POOL if sel.parent.name == "full" else n_max  # the full arm orders the whole pool
        assert len(indices) == length == len(set(indices))
        union |= set(indices)
        batches = [label_dirs[0] / f"selection/md/{sel.parent.name}/{sel.stem}/batch{k}.extxyz" for k in range(-(-length // batch))]
        frames = [atoms for path in batches for atoms in read(path, index=":")]
        assert [a.info["frame"] for a in frames] == indices
        computed.update(a.info["frame"] for a in frames if a.info["label_origin"] == "computed")
    assert set(computed) == union and set(computed.values()) == {1}
    n_test = int(TINY_CONFIG["test"]["generators"]["md"]["ramp_fs"] // TINY_CONFIG["test"]["generators"]["md"]["frame_interval_fs"])
    test = [a for path in sorted((label_dirs[0] / "test").glob("batch*.extxyz")) for a in read(path, index=":")]
    assert sorted(a.info["frame"] for a in test) == list(range(n_test))
    assert all(a.info["label_origin"] == "computed" for a in test)
    # the AL loop's picks (configurations of its own exploration) are labelled once each, in pick order
    picks = [a for path in sorted((label_dirs[0] / "al").rglob("batch*.extxyz")) for a in read(path, index=":")]
    assert picks and all(a.info["label_origin"] == "computed" and a.info["role"] == "al" for a in picks)
    store = list((tiny_run / "results/label_store").rglob("*.extxyz"))
    assert len(store) == len(union) + n_test + len(picks)


def test_reference_observables_are_physical(tiny_run):
    ref = json.loads((tiny_run / "results/NaCl/reference/nvt.json").read_text())["observables"]
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


def test_models_and_reference_share_the_state_point_windows_and_thresholds(tiny_run):
    """The contract of md.json / nvt.json: every NVT run sits at the reference's NPT density at its
    temperature, model and reference were run, averaged and fitted alike (windows in ps), and judged by the
    schema's stability defaults."""
    from confselect.config import SCHEMA, section_defaults

    validation = TINY_CONFIG["validation"]
    npt = json.loads((tiny_run / "results/NaCl/reference/npt.json").read_text())
    points = npt["state_points"]
    assert sorted(points, key=float) == ["1100", "1300", "1500", "1700"]  # scan + NVT + stress (pool's 1700 K)
    ref = json.loads((tiny_run / "results/NaCl/reference/nvt.json").read_text())
    defaults = section_defaults(SCHEMA, "validation", "stability")
    for md_file in (tiny_run / "results/NaCl/models/md").glob("*/n*/seed*/md.json"):
        md = json.loads(md_file.read_text())
        for run in (md, ref):
            assert run["state_point"]["temperature_K"] == 1300.0
            assert run["state_point"]["density_g_cm3"] == pytest.approx(points["1300"]["density_g_cm3"], rel=1e-9)
            assert run["state_point"]["density_source"].startswith("reference NPT")
            assert run["equilibration_fs"] == validation["md"]["equilibration_fs"]
            assert run["duration_fs"] == validation["md"]["duration_fs"]
            assert run["thresholds"] == defaults
        assert md["n_atoms"] == ref["n_atoms"] == sum(TINY_CONFIG["systems"]["NaCl"]["structure"]["composition"].values())
        assert md["fit_window_ps"] == ref["fit_window_ps"] == {
            "diffusion": validation["transport"]["fit_window_ps"], "conductivity": validation["transport"]["fit_window_ps"]}
        assert md["stress"]["state_point"]["temperature_K"] == 1700.0
        assert md["stress"]["state_point"]["density_g_cm3"] == pytest.approx(points["1700"]["density_g_cm3"], rel=1e-9)
    # the reference NVT at the NPT density has the NPT pressure, within what a 300 fs run of 32 ions can tell
    assert abs(ref["pressure_bar"] - 1.0) < 4 * ref["pressure_bar_sem"] + 3000.0


def test_npt_densities_of_reference_and_models(tiny_run):
    """Reference densities are those of molten Tosi-Fumi NaCl and fall with temperature; every model has one
    verdict per temperature, and only a stable run carries a density (the summary and the table agree)."""
    temperatures = TINY_CONFIG["validation"]["density"]["temperatures_K"]
    ref = json.loads((tiny_run / "results/NaCl/reference/npt.json").read_text())["runs"]
    assert sorted(ref) == sorted(f"{t:g}" for t in temperatures)
    rho = [ref[f"{t:g}"]["density_g_cm3"] for t in sorted(temperatures)]
    # 0.4 ps of 32 ions from a 1700 K frame: not converged, but a liquid (1.44 g/cm^3 at 1100 K when long)
    assert all(0.9 < r < 1.8 for r in rho), rho
    assert rho[0] > rho[-1]  # 1100 K denser than 1500 K
    table = pd.read_csv(tiny_run / "results/report/density.csv")
    summary = pd.read_csv(tiny_run / "results/report/summary.csv")
    assert len(table) == len(summary) * len(temperatures)
    assert table["density_g_cm3"].notna().equals(table["stable"].astype(bool))
    assert table.loc[~table["stable"].astype(bool), "reason"].str.len().gt(0).all()
    for t in temperatures:
        column = f"density_{t:g}K_g_cm3"
        merged = summary.merge(table[table["temperature_K"] == t], on=["method", "n_train", "seed"])
        np.testing.assert_allclose(merged[column], merged["density_g_cm3"])  # NaN where the run failed
    all_stable = table.groupby(["method", "n_train", "seed"])["stable"].all()
    for _, row in summary.iterrows():
        assert row["npt_stable"] == all_stable[(row["method"], row["n_train"], row["seed"])]
    assert (tiny_run / "results/report/density.png").stat().st_size > 10_000


def test_report_html_contains_figure(tiny_run):
    snakemake(tiny_run, "--report", "results/report/report.html")
    html = (tiny_run / "results/report/report.html").read_text(errors="replace")
    for name in ("learning_curve.png", "rdf.png", "density.png", "summary.csv", "diffusion.csv", "conductivity.csv",
                 "density.csv", "verdict.md", "stability.png", "time_survived.png", "al_calibration.png"):
        assert name in html, name


def test_the_verdict_of_a_run_and_the_page_that_opens_with_it(tiny_run):
    report = tiny_run / "results/report"
    verdict = pd.read_csv(report / "verdict.csv")
    methods = set(TINY_CONFIG["sweep"]["methods"])
    assert set(verdict["method"]) == methods
    assert set(verdict["target"]) == {"force_l4", "stable_md", "density"}
    assert (verdict["n_seeds"] == 1).all()
    random = verdict[verdict["method"] == "random"]
    finite = random[np.isfinite(random["n_to_target"])]
    assert np.allclose(finite["ratio_vs_random"], 1.0)
    text = (report / "verdict.md").read_text()
    assert text.startswith("# Verdict") and "One seed" in text
    page = (report / "index.html").read_text()
    # five figures and active learning's calibration figure
    assert page.index("id='verdict'") < page.index("<img") and page.count("data:image/png;base64,") == 6
    assert "id='al_calibration'" in page and "<strong>Active learning</strong>" in page
    summary = pd.read_csv(report / "summary.csv")
    assert (summary["label_core_hours"] > 0).all() and (summary["md_wall_s"] > 0).all()
    # the upper-bound arm is the pool itself and active learning labels its own frames: no coverage figure
    selected = ~summary["method"].isin(["full", "al_qbc"])
    assert (summary.loc[selected, "coverage_quests_entropy_nats"] > 0).all()
    assert summary.loc[~selected, "coverage_quests_entropy_nats"].isna().all()
    cost = pd.read_csv(report / "cost.csv")
    assert len(cost) == len(summary) and (cost["train_core_hours"] > 0).all()


def test_nothing_changed_plans_nothing(tiny_run):
    out = snakemake(tiny_run, "-n").stdout
    assert planned_jobs(out) == {}, out[-3000:]
    assert "Nothing to be done" in out


def test_training_change_plans_only_training_validation_and_report(tiny_run, tmp_path):
    override = tmp_path / "max_epochs.yaml"
    override.write_text(yaml.safe_dump({"training": {"max_epochs": TINY_CONFIG["training"]["max_epochs"] + 1}}))
    plan = planned_jobs(snakemake(tiny_run, "-n", configfiles=(TINY, override)).stdout)
    n_models = math.prod(len(TINY_CONFIG["sweep"][k]) for k in ("methods", "n_train", "seeds")) + len(FULL_MODELS)
    # the AL loop's committees are trained models too: its iterations and their pick labels run again
    iterations = 2
    assert plan == {
        "train": n_models,
        "test_errors": n_models,
        "ml_md": n_models,
        "al_committee": iterations * TINY_CONFIG["selection"]["al_qbc"]["committee_size"],
        "al_explore": iterations,
        "label": iterations,  # one label batch per iteration's picks
        "al_calibration": 1,
        "summary": 1,
        "density_report": 1,
        "learning_curve": 1,
        "observables_report": 1,
        "verdict": 1,
        "pool_comparison": 1,
        "report_page": 1,
        "all": 1,
    }


def test_density_change_plans_only_ml_md_jobs_and_report(tiny_run, tmp_path):
    override = tmp_path / "density.yaml"
    override.write_text(yaml.safe_dump({"validation": {"density": {"temperatures_K": [1200.0, 1400.0]}}}))
    plan = planned_jobs(snakemake(tiny_run, "-n", configfiles=(TINY, override)).stdout)
    n_models = math.prod(len(TINY_CONFIG["sweep"][k]) for k in ("methods", "n_train", "seeds")) + len(FULL_MODELS)
    # a model's NVT and NPT runs share one ml_md job (one process, one loaded model), so the NVT run is
    # repeated and its report with it; the learning curve is drawn from the summary, which gains the new
    # densities; the teacher's NVT run starts from the state-point frame that the rerun NPT job writes anew
    assert plan == {"reference_npt": 1, "reference_md": 1, "ml_md": n_models, "summary": 1, "density_report": 1, "learning_curve": 1,
                    "observables_report": 1, "verdict": 1, "pool_comparison": 1, "report_page": 1, "all": 1}


def test_new_size_within_the_selection_trains_only_its_models(tiny_run, tmp_path):
    """A new training-set size within the existing selections needs no new selection: the plan holds the new
    models, their validation, the (cheap) coverage of every selection and the report, and after the run
    no existing model or validation result was touched."""
    workdir = tmp_path / "run"
    shutil.copytree(tiny_run, workdir, symlinks=True)
    sweep = {"methods": ["random", "rnd"], "n_train": [2, *TINY_CONFIG["sweep"]["n_train"]], "seeds": [0]}
    override = tmp_path / "sizes.yaml"
    override.write_text(yaml.safe_dump({"sweep": sweep}))
    configs = (TINY, override)
    models = workdir / "results/NaCl/models/md"
    before = {p: p.stat().st_mtime_ns for p in models.glob("*/n*/seed0/*.json")}
    before.update({p: p.stat().st_mtime_ns for p in (workdir / "results/NaCl/selection/md").glob("*/seed0.json")})
    plan = planned_jobs(snakemake(workdir, "-n", configfiles=configs).stdout)
    new_models = len(sweep["methods"])
    # the new size's frames are in the label batches the larger sizes read: no label job is planned
    assert plan == {
        "coverage": len(sweep["methods"]), "train": new_models, "test_errors": new_models, "ml_md": new_models,
        "summary": 1, "learning_curve": 1, "observables_report": 1, "density_report": 1,
        "verdict": 1, "pool_comparison": 1, "report_page": 1, "all": 1,
    }  # fmt: skip
    snakemake(workdir, configfiles=configs)
    for method in sweep["methods"]:
        assert json.loads((models / f"{method}/n2/seed0/training.json").read_text())["n_trained"] == 2
        cover = json.loads((workdir / f"results/NaCl/selection/md/{method}/seed0_coverage.json").read_text())
        assert sorted(cover, key=int) == ["2", "4", "8"]
        assert cover["2"]["max_min_distance"] >= cover["8"]["max_min_distance"]
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_active_learning_counts_every_label_within_its_budget(tiny_run):
    """The tiny AL run (two iterations of two picks, a two-member committee): each iteration calibrated its
    threshold on the held-out labels, explored with ML-MD and picked at most its budget; the AL models count
    the seed, calibration and picked frames as labels, train on seed and picks, and carry the loop's cost."""
    from ase.io import read

    al = TINY_CONFIG["selection"]["al_qbc"]
    root = tiny_run / "results/NaCl/al/md/seed0"
    records = [json.loads((root / f"iter{i}/exploration.json").read_text()) for i in (1, 2)]
    for i, record in enumerate(records, start=1):
        assert record["iteration"] == i and record["max_picks"] == al["frames_per_iteration"]
        assert record["n_picks"] == len(read(root / f"iter{i}/picks.extxyz", index=":")) <= record["max_picks"]
        calibration = record["threshold"]["calibration"]
        assert calibration["n_frames"] == al["n_calibration"]
        # the threshold flags the configured fraction of the badly predicted calibration frames
        assert calibration["n_bad"] == 0 or calibration["recall"] >= 0.9
        assert record["threshold"]["source"] == "calibrated" and record["threshold"]["threshold"] > 0
        for trajectory in record["trajectories"]:
            if trajectory["uncertain"]:
                assert trajectory["value_at_stop"] > record["threshold"]["threshold"]
        assert (root / f"iter{i}/member1/model.pt").exists()
        member = json.loads((root / f"iter{i}/member0/training.json").read_text())
        # the committee of iteration i trains on the seed set and the picks of the iterations before it
        assert member["n_training_labels"] == al["n_initial"] + sum(r["n_picks"] for r in records[: i - 1])
        assert len(member["training_rows"]) < member["n_training_labels"]  # its fold held out
    summary = pd.read_csv(tiny_run / "results/report/summary.csv")
    rows = summary[summary["method"] == "al_qbc"].set_index("n_train")
    start = al["n_initial"] + al["n_calibration"]
    assert list(rows.index) == [n for n in TINY_CONFIG["sweep"]["n_train"] if n >= start]
    picked = sum(r["n_picks"] for r in records)
    assert rows.loc[8, "n_labels"] == start + picked <= 8 and rows.loc[4, "n_labels"] == 4
    assert rows.loc[8, "n_trained"] == al["n_initial"] + picked and rows.loc[4, "n_trained"] == al["n_initial"]
    assert rows.loc[8, "al_iterations"] == 2 and rows.loc[4, "al_iterations"] == 0
    assert rows.loc[8, "al_committee_train_time_s"] > 0 and rows.loc[8, "al_exploration_wall_s"] > 0
    # the AL model's labels cost more than the random arm's training labels of the same budget: it pays its
    # calibration labels and labels of its own frames
    random = summary[(summary["method"] == "random") & (summary["n_train"] == 8)].iloc[0]
    assert rows.loc[8, "label_core_hours"] > 0 and random["label_core_hours"] > 0
    cost = pd.read_csv(tiny_run / "results/report/cost.csv").set_index(["method", "n_train"])
    assert cost.loc[("al_qbc", 8), "al_exploration_hours"] > 0 and cost.loc[("random", 8), "al_exploration_hours"] == 0
    loop = pd.read_csv(tiny_run / "results/report/al_loop.csv")
    assert list(loop["iteration"]) == [1, 2] and (loop["n_picks"] <= 2).all()


def test_a_changed_al_setting_replans_its_iterations_and_nothing_else(tiny_run, tmp_path):
    override = tmp_path / "committee.yaml"
    override.write_text(yaml.safe_dump({"selection": {"al_qbc": {"committee_size": 3}}}))
    plan = planned_jobs(snakemake(tiny_run, "-n", configfiles=(TINY, override)).stdout)
    assert plan == {
        "al_committee": 2 * 3, "al_explore": 2, "label": 2, "al_calibration": 1,
        # the AL model at 8 labels (the one at 4 trains on the seed set, which the committee does not choose)
        "train": 1, "test_errors": 1, "ml_md": 1,
        "summary": 1, "learning_curve": 1, "observables_report": 1, "density_report": 1, "verdict": 1,
        "pool_comparison": 1, "report_page": 1, "all": 1,
    }  # fmt: skip


def test_committee_uncertainty_of_one_shot_and_al_models(tiny_run, tmp_path):
    """validation.uncertainty: a committee trained like the model on its labels gives any model (one-shot or
    AL) a disagreement on the held-out frames, beside its errors in the summary row."""
    from confselect.report import summary_row

    workdir = tmp_path / "run"
    shutil.copytree(tiny_run, workdir, symlinks=True)
    override = tmp_path / "uncertainty.yaml"
    override.write_text(yaml.safe_dump({"validation": {"uncertainty": {"enabled": True, "committee_size": 2}}}))
    models = [workdir / f"results/NaCl/models/md/{method}/n8/seed0" for method in ("random", "al_qbc")]
    # (an option first: it ends --configfile's list of files)
    out = snakemake(workdir, "--keep-going", *[str((m / "uncertainty.json").relative_to(workdir)) for m in models],
                    configfiles=(TINY, override)).stdout
    assert planned_jobs(out) == {"uncertainty": 2}, out[-3000:]
    for model in models:
        result = json.loads((model / "uncertainty.json").read_text())
        assert result["committee_size"] == 2 and result["n_frames"] == 4
        assert result["mean_rho_eV"] > 0 and result["mean_force_disagreement_max_eV_A"] >= \
            result["mean_force_disagreement_mean_eV_A"] > 0
        assert -1 <= result["energy_error_spearman"] <= 1 and result["committee_train_time_s"] > 0
        row = summary_row(model, "classical", model / "none.json", uncertainty=True)
        assert row["uncertainty_mean_rho_eV"] == result["mean_rho_eV"]
        assert "uncertainty_mean_rho_eV" not in summary_row(model, "classical", model / "none.json")
