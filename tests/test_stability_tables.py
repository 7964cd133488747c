"""The transition line of docs/validation.md: the smallest size from which every larger size is stable."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from tables import transitions  # noqa: E402


def model(arm, method, n, nvt=True, stress=True, npt=True):
    return {"arm": arm, "method": method, "n_train": n, "nvt_stable": nvt, "stress_stable": stress, "npt_stable": npt}


def test_transition_is_the_size_after_the_last_failure():
    models = [
        model("zbl", "rnd", 8, npt=False), model("zbl", "rnd", 16), model("zbl", "rnd", 32, stress=False),
        model("zbl", "rnd", 64), model("zbl", "rnd", 256),
        model("zbl", "random", 8), model("zbl", "random", 16),
        model("plain", "random", 8, nvt=False), model("plain", "random", 256, nvt=False),
    ]
    assert transitions(models) == [
        "- plain, random: no size up to n = 256 runs all three stable",
        "- zbl, random: every size from n = 8 runs all three stable",
        "- zbl, rnd: stable from n = 64 on (n = 32 failed)",  # a stable 16 below a failed 32 does not count
    ]
