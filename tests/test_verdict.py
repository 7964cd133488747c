"""The verdict's statistics on synthetic summaries whose answers are known by construction."""

import math

import numpy as np
import pandas as pd
import pytest

from confselect.comparisons import paired_comparisons, seed_statistics, seeds_needed
from confselect.config import report_settings
from confselect.intervals import holm, mean_interval, median_interval, min_wilcoxon_p, wilson_interval
from confselect.verdict import crossing, labels_to_target, main, write_verdict
from confselect.verdict_text import verdict_markdown

SIZES = [4, 8, 16, 32, 64, 128, 256, 512]
TARGETS = {"force_l4_eV_A": 0.1, "stable_fraction": 0.8, "density_rel_error": 0.05}
SETTINGS = {"baseline_method": "random", "targets": TARGETS, "n_bootstrap": 1000, "alpha": 0.05}


def synthetic(efficiency: dict, seeds, rng, noise=0.08, sizes=SIZES) -> pd.DataFrame:
    """L4 = 0.8 / sqrt(efficiency * n) with log-normal seed noise: a method with efficiency 4 reaches any
    L4 with a quarter of random's labels.  A model is stable (NVT, NPT) and its density within 5 % once
    efficiency * n exceeds a seed's own threshold around 64 (log-normal): the same factor of 4."""
    rows = []
    for method, factor in efficiency.items():
        for seed in seeds:
            threshold = 64.0 * math.exp(rng.normal(0.0, 0.3))
            for n in sizes:
                l4 = 0.8 / math.sqrt(factor * n) * math.exp(rng.normal(0.0, noise))
                stable = factor * n >= threshold
                rows.append({"system": "NaCl", "labeller": "classical-00000000", "method": method, "n_train": n,
                             "seed": seed, "force_l4_eV_A": l4, "force_rmse_eV_A": 0.75 * l4,
                             "energy_rmse_eV_atom": 0.01, "stable": stable, "npt_stable": stable,
                             "time_survived_fs": 20000.0 if stable else 20000.0 * factor * n / threshold,
                             "density_1100K_rel_error_vs_teacher": 0.01 if stable else math.nan,
                             "density_1300K_rel_error_vs_teacher": -0.02 if stable else math.nan,
                             "label_core_hours": 0.5 * n})
    return pd.DataFrame(rows)


def row(table, method, target):
    return table[(table["method"] == method) & (table["target"] == target)].iloc[0]


def test_a_four_times_more_efficient_method_gets_a_ratio_interval_around_four_that_excludes_one():
    summary = synthetic({"random": 1.0, "fast": 4.0}, range(10), np.random.default_rng(1))
    table = labels_to_target(summary, TARGETS, n_bootstrap=1000)
    for target in ("force_l4", "stable_md", "density"):
        r = row(table, "fast", target)
        assert r["ratio_low"] <= 4.0 <= r["ratio_high"], (target, r["ratio_low"], r["ratio_high"])
        assert r["ratio_low"] > 1.0, (target, r["ratio_low"])
        assert r["n_seeds"] == 10
    # the L4 target 0.1 eV/A is met at n = 64 (random) and 16 (fast) without noise
    assert row(table, "random", "force_l4")["n_to_target"] == pytest.approx(64, rel=0.15)
    assert row(table, "fast", "force_l4")["n_to_target"] == pytest.approx(16, rel=0.15)
    assert row(table, "random", "force_l4")["ratio_vs_random"] == pytest.approx(1.0)
    # cost to target: n labels at 0.5 core-hours each
    r = row(table, "fast", "stable_md")
    assert r["labeller_core_hours_to_target"] == pytest.approx(0.5 * r["n_to_target"])


def test_identical_methods_give_ratio_intervals_containing_one_and_no_significant_paired_test():
    summary = synthetic({"random": 1.0, "same": 1.0}, range(10), np.random.default_rng(2))
    table = labels_to_target(summary, TARGETS, n_bootstrap=1000)
    for target in ("force_l4", "stable_md", "density"):
        r = row(table, "same", target)
        assert r["ratio_low"] <= 1.0 <= r["ratio_high"], (target, r["ratio_low"], r["ratio_high"])
    pairs = paired_comparisons(summary, alpha=0.05)
    assert len(pairs) == len(SIZES)
    assert (pairs["outcome"] == "no significant difference").all()


def test_paired_tests_find_a_consistent_difference_and_name_the_better_method():
    # "random" sorts before "rnd" and before "fast": the better method is once method_b, once method_a
    for better in ("rnd", "fast"):
        summary = synthetic({"random": 1.0, better: 4.0}, range(10), np.random.default_rng(3))
        pairs = paired_comparisons(summary, alpha=0.05)
        assert (pairs["outcome"] == f"{better} lower").all()
        assert (pairs["p_holm"] >= pairs["p"]).all()


def test_too_few_seeds_is_said_not_hidden():
    summary = synthetic({"random": 1.0, "fast": 4.0}, range(3), np.random.default_rng(4))
    pairs = paired_comparisons(summary, alpha=0.05)
    assert (pairs["outcome"] == "too few seeds").all()
    table = labels_to_target(summary, TARGETS, n_bootstrap=200)
    text = verdict_markdown(table, pairs, summary, SETTINGS)
    # 8 sizes: Holm needs 8 * 2 / 2^k <= 0.05, k >= 9 (one comparison: k >= 6)
    assert f"it needs at least {seeds_needed(0.05, len(pairs))} seeds" in text
    assert seeds_needed(0.05, 8) == 9 and seeds_needed(0.05) == 6
    one = synthetic({"random": 1.0, "fast": 4.0}, [0], np.random.default_rng(4))
    text = verdict_markdown(labels_to_target(one, TARGETS, n_bootstrap=200), paired_comparisons(one, alpha=0.05),
                            one, SETTINGS)
    assert "One seed" in text


def test_the_verdict_text_follows_the_numbers():
    summary = synthetic({"random": 1.0, "fast": 4.0}, range(6), np.random.default_rng(5))
    table = labels_to_target(summary, TARGETS, n_bootstrap=200)
    pairs = paired_comparisons(summary, alpha=0.05)
    text = verdict_markdown(table, pairs, summary, SETTINGS)
    r = row(table, "fast", "force_l4")
    assert f"fast at {r['n_to_target']:.3g}" in text
    assert "mean force L4 error <= 0.1 eV/A" in text
    worse = summary.copy()
    worse.loc[worse["method"] == "fast", "force_l4_eV_A"] *= 2.0
    text2 = verdict_markdown(labels_to_target(worse, TARGETS, n_bootstrap=200), pairs, worse, SETTINGS)
    assert text2 != text
    r2 = row(labels_to_target(worse, TARGETS, n_bootstrap=200), "fast", "force_l4")
    assert r2["n_to_target"] > 2 * r["n_to_target"]
    assert f"fast at {r2['n_to_target']:.3g}" in text2


def test_crossing_interpolates_a_power_law_exactly_and_censors_at_the_ends():
    sizes = np.array([8, 16, 32, 64])
    scores = 1.0 / np.sqrt(sizes)
    n, censored = crossing(sizes, scores, 1.0 / math.sqrt(24.0), "below", True)
    assert n == pytest.approx(24.0) and censored == ""
    assert crossing(sizes, scores, 1.0, "below", True) == (8.0, "left")
    assert crossing(sizes, scores, 0.01, "below", True) == (math.inf, "right")
    # fractions: linear in log n, the first crossing counts
    n, _ = crossing(sizes, [0.0, 0.5, 1.0, 1.0], 0.75, "above", False)
    assert n == pytest.approx(math.sqrt(16 * 32))


def test_unreached_targets_are_infinite_and_the_ratio_says_so():
    summary = synthetic({"random": 1.0, "fast": 4.0}, range(5), np.random.default_rng(6), sizes=[4, 8, 16, 32])
    table = labels_to_target(summary, TARGETS, n_bootstrap=200)
    random_l4 = row(table, "random", "force_l4")
    assert math.isinf(random_l4["n_to_target"]) and random_l4["censored"] == "right"
    fast = row(table, "fast", "force_l4")
    assert math.isinf(fast["ratio_vs_random"])
    text = verdict_markdown(table, paired_comparisons(summary, alpha=0.05), summary, SETTINGS)
    assert "random at > 32" in text


def test_intervals_match_their_textbook_values():
    # Student t with 2 dof: t_0.975 = 4.3027
    m = mean_interval([1.0, 2.0, 3.0])
    assert m["mean"] == 2.0 and m["high"] - m["mean"] == pytest.approx(4.3027 / math.sqrt(3), rel=1e-4)
    # Wilson, 0 of 10 at 95 %: [0, 0.2775]; 10 of 10: [0.7225, 1]
    assert wilson_interval(0, 10)["high"] == pytest.approx(0.2775, abs=1e-4)
    assert wilson_interval(10, 10)["low"] == pytest.approx(0.7225, abs=1e-4)
    for k, n in ((0, 3), (3, 3), (2, 3), (1, 1), (7, 7)):
        w = wilson_interval(k, n)
        assert w["low"] <= w["fraction"] <= w["high"]
    # median of 10: ranks 2 and 9 (1-based) cover with 97.9 %
    med = median_interval(list(range(1, 11)))
    assert (med["low"], med["high"]) == (2.0, 9.0) and med["coverage"] == pytest.approx(0.9785, abs=1e-4)
    assert median_interval([3.0, 1.0, 2.0])["coverage"] == pytest.approx(0.75)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert min_wilcoxon_p(3) == 0.25 and min_wilcoxon_p(6) == pytest.approx(0.03125)


def test_seed_statistics_intervals_and_fractions():
    summary = synthetic({"random": 1.0}, range(4), np.random.default_rng(7))
    stats = seed_statistics(summary)
    assert len(stats) == len(SIZES) and (stats["n_seeds"] == 4).all()
    assert (stats["force_l4_eV_A_low"] < stats["force_l4_eV_A_mean"]).all()
    assert (stats["force_l4_eV_A_mean"] < stats["force_l4_eV_A_high"]).all()
    last = stats[stats["n_train"] == 512].iloc[0]
    assert last["nvt_stable_fraction"] == 1.0 and last["nvt_stable_low"] < 1.0


def test_command_line_rejudges_a_summary_with_the_configs_targets(tmp_path):
    summary = synthetic({"random": 1.0, "fast": 4.0}, range(3), np.random.default_rng(8))
    summary.to_csv(tmp_path / "summary.csv", index=False)
    main([str(tmp_path / "summary.csv"), str(tmp_path / "out")])
    table = pd.read_csv(tmp_path / "out" / "verdict.csv")
    for column in ("n_to_target", "n_low", "n_high", "ratio_vs_random", "ratio_low", "ratio_high", "n_seeds",
                   "labeller_core_hours_to_target", "system", "labeller", "method", "target"):
        assert column in table.columns
    defaults = report_settings(pytest.importorskip("pathlib").Path(__file__).parents[1] / "config" / "schema.yaml")
    assert defaults["targets"]["force_l4_eV_A"] == 0.2
    assert (tmp_path / "out" / "verdict.md").read_text().startswith("# Verdict")
    paths = write_verdict(summary, tmp_path / "strict", {**SETTINGS, "targets": {**TARGETS, "force_l4_eV_A": 0.05}})
    strict = pd.read_csv(paths["verdict_csv"])
    loose = table[table["target"] == "force_l4"].set_index("method")["n_to_target"]
    tight = strict[strict["target"] == "force_l4"].set_index("method")["n_to_target"]
    assert (tight > loose).all()


def test_the_readme_quotes_the_demo_time_only_from_an_empty_start(tmp_path):
    import json

    from confselect.readme import update

    summary = synthetic({"random": 1.0, "rnd": 4.0}, range(3), np.random.default_rng(9), sizes=[8, 16, 32])
    summary.to_csv(tmp_path / "summary.csv", index=False)
    write_verdict(summary, tmp_path, SETTINGS)
    readme = tmp_path / "README.md"
    blocks = "".join(f"<!-- results:{b} -->\nold {b}\n<!-- /results:{b} -->\n" for b in ("summary", "verdict", "demo_time"))
    readme.write_text(blocks)
    record = {"wall_s": 1234.4, "cores": 2, "from_empty_results": False, "date": "2026-12-06"}
    (tmp_path / "demo_time.json").write_text(json.dumps(record))
    update(readme, tmp_path)
    assert "old demo_time" in readme.read_text()  # a rerun over existing results is not the demo's time
    (tmp_path / "demo_time.json").write_text(json.dumps({**record, "from_empty_results": True}))
    update(readme, tmp_path)
    assert "old demo_time" not in readme.read_text() and "**20 min 34 s** on 2 cores" in readme.read_text()


def test_the_readme_result_blocks_are_regenerated_from_a_run(tmp_path):
    from confselect.readme import update

    summary = synthetic({"random": 1.0, "rnd": 4.0}, range(3), np.random.default_rng(9), sizes=[8, 16, 32])
    summary.to_csv(tmp_path / "summary.csv", index=False)
    write_verdict(summary, tmp_path, SETTINGS)
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:summary -->\nold\n<!-- /results:summary -->\nmiddle\n"
                      "<!-- results:verdict -->\n<!-- /results:verdict -->\nend\n")
    update(readme, tmp_path)
    text = readme.read_text()
    assert "old" not in text and text.startswith("intro\n") and text.endswith("end\n")
    rnd32 = summary[(summary["method"] == "rnd") & (summary["n_train"] == 32)]
    mean = rnd32["force_l4_eV_A"].mean()
    line = next(l for l in text.splitlines() if l.startswith("| NaCl | rnd | 32 |"))
    assert f"| {mean:.3g} [" in line and "3 of 3" in line
    assert "**NaCl, classical-00000000 labels**" in text and "# Verdict" not in text
    with pytest.raises(SystemExit, match="results:summary"):
        (tmp_path / "bare.md").write_text("no markers\n")
        update(tmp_path / "bare.md", tmp_path)


def test_a_step_shared_by_every_seed_gives_the_whole_bracket_not_a_point():
    """Every seed unstable at 16 and stable at 32: the data place the transition between 16 and 32, no
    finer; the bootstrap alone would return the interpolated 27.9 as a zero-width interval."""
    rows = []
    for method in ("random", "rnd"):
        for seed in range(3):
            for n in (8, 16, 32, 64):
                stable = n >= (32 if method == "random" else 64)
                rows.append({"system": "NaCl", "labeller": "x", "method": method, "n_train": n, "seed": seed,
                             "force_l4_eV_A": 1.0 / n + 0.001 * seed, "stable": stable, "npt_stable": stable,
                             "density_1100K_rel_error_vs_teacher": 0.01 if stable else math.nan})
    table = labels_to_target(pd.DataFrame(rows), TARGETS, n_bootstrap=200)
    r = row(table, "random", "stable_md")
    assert (r["n_low"], r["n_high"]) == (16.0, 32.0) and 16 < r["n_to_target"] < 32
    # rnd's step is between 32 and 64: random needs between 16/64 and 32/32 of rnd's labels
    r = row(table, "rnd", "stable_md")
    assert (r["n_low"], r["n_high"]) == (32.0, 64.0)
    assert r["ratio_low"] == pytest.approx(0.25) and r["ratio_high"] == pytest.approx(1.0)


def test_a_method_that_never_reaches_a_target_the_baseline_reaches_gets_an_upper_bound():
    summary = synthetic({"random": 4.0, "slow": 1.0}, range(5), np.random.default_rng(6), sizes=[4, 8, 16, 32])
    table = labels_to_target(summary, TARGETS, n_bootstrap=200)
    slow, base = row(table, "slow", "force_l4"), row(table, "random", "force_l4")
    assert slow["ratio_vs_random"] == 0 and np.isfinite(base["n_to_target"])
    assert slow["baseline_n_to_target"] == base["n_to_target"]
    text = verdict_markdown(table, paired_comparisons(summary, alpha=0.05), summary, SETTINGS)
    bound = f"< {base['n_to_target'] / 32:.2g}"
    assert f"random needs {bound}x as many" in text and f"ratio {bound}" in text
    assert slow["ratio_low"] == slow["ratio_high"] == 0  # in every resampling too: the interval's ends are bounds
    assert f"as many, [<{base['n_to_target'] / 32:.2g}, <" in text and "[0, 0]" not in text


def _with_active_learning(summary, stopped_seed=None):
    """``summary`` plus an al_qbc arm (the 'random' rows relabelled) that paid its loop: 1 h of committee
    training on 2 threads and 0.5 h of exploration per model; one seed's loop stopped before its budget."""
    al = summary[summary["method"] == "random"].copy()
    al["method"] = "al_qbc"
    al["n_labels"] = al["n_train"]
    al["al_iterations"] = 2
    al["al_committee_train_time_s"], al["al_committee_train_threads"] = 3600.0, 2
    al["al_committee_train_device"], al["al_exploration_wall_s"] = "cpu", 1800.0
    al["al_stop_reason"] = ""
    if stopped_seed is not None:
        late = (al["seed"] == stopped_seed) & (al["n_train"] == al["n_train"].max())
        al.loc[late, "al_stop_reason"] = "no uncertain frame among 40 explored"
        al.loc[late, "n_labels"] = al.loc[late, "n_train"] - 4
    return pd.concat([summary.assign(n_labels=summary["n_train"]), al], ignore_index=True)


def test_the_verdict_bills_active_learning_for_its_loop():
    summary = _with_active_learning(synthetic({"random": 1.0, "rnd": 2.0}, range(3), np.random.default_rng(2),
                                              sizes=[8, 16, 32]), stopped_seed=1)
    text = verdict_markdown(labels_to_target(summary, TARGETS, n_bootstrap=100), paired_comparisons(summary),
                            summary, SETTINGS)
    line = next(l for l in text.splitlines() if l.startswith("**Active learning**"))
    assert "n = 8: 8 labels used (2 iterations), committee training 2 core-h, exploration 0.5 h" in line
    assert "n = 32: 30.7 labels used" in line  # one seed stopped 4 labels short
    assert "stopped before its budget in 1 of 9 models" in line and "no uncertain frame among 40" in line
    plain = summary[summary["method"] != "al_qbc"]
    assert "Active learning" not in verdict_markdown(labels_to_target(plain, TARGETS, n_bootstrap=100),
                                                     paired_comparisons(plain), plain, SETTINGS)


def test_the_readme_al_blocks_are_regenerated_from_a_run(tmp_path):
    from confselect.readme import update_al

    summary = _with_active_learning(synthetic({"random": 1.0, "rnd": 4.0}, range(3), np.random.default_rng(9),
                                              sizes=[8, 16, 32]))
    summary.to_csv(tmp_path / "summary.csv", index=False)
    write_verdict(summary, tmp_path, SETTINGS)
    readme = tmp_path / "README.md"
    readme.write_text("".join(f"<!-- results:{tag} -->\nold\n<!-- /results:{tag} -->\n"
                              for tag in ("al_summary", "al_verdict")))
    update_al(readme, tmp_path)
    text = readme.read_text()
    assert "old" not in text
    al = next(l for l in text.splitlines() if l.startswith("| al_qbc | 16 |"))
    rnd = next(l for l in text.splitlines() if l.startswith("| rnd | 16 |"))
    # per model: 1 h x 2 threads of committee training (2 core-h) + 0.5 h of exploration; nothing for RND
    assert al.endswith("| 2.5 |") and rnd.endswith("| 0 |")
    assert "**Active learning**" in text
