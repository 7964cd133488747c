"""A frame picked by several methods, sizes or seeds is labelled once: the plan holds |union| label jobs,
minus the frames already labelled by an earlier run."""

import json
import shutil

import pytest
import yaml

from conftest import TINY, planned_jobs, snakemake

TINY_N_TRAIN = yaml.safe_load(TINY.read_text())["sweep"]["n_train"]

pytestmark = pytest.mark.workflow


def test_overlapping_selections_plan_one_label_job_per_unique_new_frame(tiny_run, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(tiny_run, workdir, symlinks=True)
    label_dir = next((workdir / "results/NaCl/labels").iterdir())
    # The earlier run's upper-bound arm labelled the whole pool; keep the labels of its random and rnd
    # models only, so that the new selections need some frames the directory does not hold.
    earlier = {i for method in ("random", "rnd") for i in json.loads(
        (workdir / f"results/NaCl/selection/{method}/seed0.json").read_text())["indices"][:max(TINY_N_TRAIN)]}
    for path in (label_dir / "pool").glob("*.extxyz"):
        if int(path.stem) not in earlier:
            path.unlink()
    already = {int(p.stem) for p in (label_dir / "pool").glob("*.extxyz")}
    assert already == earlier
    # 40 of 60 pool frames per selection: selections must overlap (40 + 40 > 60)
    override = tmp_path / "overlap.yaml"
    override.write_text(yaml.safe_dump({"sweep": {"methods": ["random", "rnd"], "n_train": [10, 40], "seeds": [0, 1],
                                                  "full": {"enabled": False}}}))
    configs = (TINY, override)
    snakemake(workdir, "--until", "select", configfiles=configs)
    selections = [
        json.loads((workdir / f"results/NaCl/selection/{method}/seed{seed}.json").read_text())["indices"]
        for method in ("random", "rnd")
        for seed in (0, 1)
    ]
    assert len(selections) == 4 and all(len(s) == 40 for s in selections)
    union = set().union(*selections)
    assert len(union) < sum(len(s) for s in selections)  # they do overlap
    plan = planned_jobs(snakemake(workdir, "-n", configfiles=configs).stdout)
    assert union & already  # seed 0 selections start with the earlier run's picks
    assert plan["label"] == len(union - already)  # test frames and earlier labels are not planned again
    assert plan["train"] == 2 * 2 * 2


def test_the_planned_cp2k_cost_needs_no_label_job(tmp_path):
    """config/paper.yaml's campaign cost comes from the cutoff series alone: the plan for the estimate holds
    the pool MD, the one-frame cutoff series and the estimate, and not a single label job."""
    from conftest import REPO

    override = tmp_path / "no_setup_check.yaml"  # CP2K need not be installed to plan
    override.write_text(yaml.safe_dump({"labelling": {"check_setup": False}}))
    out = snakemake(tmp_path, "-n", "results/NaCl/label_cost_estimate.json",
                    configfiles=(REPO / "config" / "paper.yaml", override)).stdout
    assert planned_jobs(out) == {"classical_md": 1, "cp2k_cutoff_convergence": 1, "label_cost_estimate": 1}
