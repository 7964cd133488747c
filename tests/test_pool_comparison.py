"""Pool recipes compared at equal labels, on synthetic summaries whose answer is known."""

import math

import numpy as np
import pandas as pd
import pytest

from confselect.pool_comparison import best_pools, pool_markdown, pool_table, stable_from


def synthetic_summary(seed: int = 0) -> pd.DataFrame:
    """Three recipes x two methods x three sizes x three seeds. "static" has the lowest lattice-constant
    error, "md" the lowest force error at every size; "both" runs stable from n = 32, "md" from n = 16 and
    "static" never (its NPT runs fail); one "md" model at n = 8 has no equation of state."""
    rng = np.random.default_rng(seed)
    rows = []
    force = {"md": 0.10, "static": 0.30, "both": 0.15}
    lattice = {"md": -0.02, "static": 0.001, "both": 0.005}  # signed: compared by magnitude
    for pool in force:
        for method in ("random", "fps"):
            for n in (8, 16, 32):
                for s in range(3):
                    stable_npt = (pool == "md" and n >= 16) or (pool == "both" and n >= 32)
                    rows.append({"system": "Cu", "labeller": "classical-x", "pool": pool, "method": method,
                                 "n_train": n, "seed": s, "stable": True, "stress_stable": True,
                                 "npt_stable": stable_npt,
                                 "force_l4_eV_A": force[pool] * (1 + 0.01 * rng.standard_normal()) * 16 / n,
                                 "lattice_constant_rel_error": lattice[pool] * (1 + 0.01 * rng.standard_normal())})
    rows.append({**rows[0], "method": "full", "n_train": 500, "force_l4_eV_A": 0.0})  # not a label budget
    summary = pd.DataFrame(rows)
    summary.loc[(summary["pool"] == "md") & (summary["n_train"] == 8) & (summary["seed"] == 0)
                & (summary["method"] == "random"), "lattice_constant_rel_error"] = math.nan
    return summary


def test_the_lowest_error_recipe_is_named_per_observable_and_size():
    table = pool_table(synthetic_summary())
    assert set(table["n_train"]) == {8, 16, 32}  # the upper-bound arm's 500 is no shared budget
    best = {(r["observable"], r["n_train"]): r for r in best_pools(table)}
    for n in (8, 16, 32):
        assert best[("force_l4_eV_A", n)]["best_pool"] == "md"
        assert best[("lattice_constant_rel_error", n)]["best_pool"] == "static"  # |+0.001| < |-0.02|
        assert best[("force_l4_eV_A", n)]["runner_up"] == pytest.approx(0.15 * 16 / n, rel=0.03)
    md8 = table[(table["pool"] == "md") & (table["n_train"] == 8)].iloc[0]
    assert md8["lattice_constant_rel_error_count"] == 5 and md8["n_models"] == 6
    assert md8["lattice_constant_rel_error"] == pytest.approx(0.02, rel=0.03)  # mean |error| of the 5


def test_stable_from_is_the_size_after_which_every_model_is_stable():
    table = pool_table(synthetic_summary())
    first = stable_from(table)
    assert first[("Cu", "classical-x", "md")] == 16
    assert first[("Cu", "classical-x", "both")] == 32
    assert math.isinf(first[("Cu", "classical-x", "static")])
    both = table[table["pool"] == "both"].set_index("n_train")
    assert list(both["npt_stable_fraction"]) == [0.0, 0.0, 1.0] and list(both["nvt_stable_fraction"]) == [1.0] * 3


def test_the_markdown_holds_the_tables_numbers():
    table = pool_table(synthetic_summary())
    text = pool_markdown(table)
    row = next(line for line in text.splitlines() if line.startswith("| lattice_constant_rel_error |"))
    assert row.count("**static**") == 3
    force_row = next(line for line in text.splitlines() if line.startswith("| force_l4_eV_A |"))
    assert "**md** 0.2 " in force_row or "**md** 0.201" in force_row or "**md** 0.199" in force_row  # 0.1 x 16 / 8
    md_row = next(line for line in text.splitlines() if line.startswith("| md |"))
    assert md_row.endswith("| n = 16 |") and "100 % / 100 % / 0 % / 0 %" in md_row
    static_row = next(line for line in text.splitlines() if line.startswith("| static |"))
    assert static_row.endswith("| no swept size |")
