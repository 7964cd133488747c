"""A frame picked by several methods, sizes or seeds is computed once: the label batches of overlapping
selections compute |union| frames, minus those the label store already holds, and copy the rest."""

import json
import shutil
from collections import Counter

import pytest
import yaml
from ase.io import read

from conftest import TINY, planned_jobs, snakemake

TINY_CONFIG = yaml.safe_load(TINY.read_text())
TINY_N_TRAIN = TINY_CONFIG["sweep"]["n_train"]

pytestmark = pytest.mark.workflow


def test_overlapping_selections_compute_each_new_frame_once(tiny_run, tmp_path):
    from confselect.labelling.store import LabelStore

    workdir = tmp_path / "run"
    shutil.copytree(tiny_run, workdir, symlinks=True)
    label_dir = next((workdir / "results/NaCl/labels").iterdir())
    store = LabelStore(workdir / "results/label_store", label_dir.name)
    pool = read(workdir / "results/NaCl/pool/md/frames.extxyz", index=":")
    # The earlier run's upper-bound arm labelled the whole pool; keep the stored labels of its random and
    # rnd models only, so that the new selections need some frames the store does not hold.
    earlier = {i for method in ("random", "rnd") for i in json.loads(
        (workdir / f"results/NaCl/selection/md/{method}/seed0.json").read_text())["indices"][:max(TINY_N_TRAIN)]}
    for i, atoms in enumerate(pool):
        if i not in earlier:
            store.get(atoms).unlink()
    assert {i for i, atoms in enumerate(pool) if store.get(atoms)} == earlier
    # 40 of 60 pool frames per selection: selections must overlap (40 + 40 > 60)
    override = tmp_path / "overlap.yaml"
    override.write_text(yaml.safe_dump({"sweep": {"methods": ["random", "rnd"], "n_train": [10, 40], "seeds": [0, 1],
                                                  "full": {"enabled": False}}}))
    configs = (TINY, override)
    snakemake(workdir, "--until", "select", configfiles=configs)
    selections = {
        (method, seed): json.loads((workdir / f"results/NaCl/selection/md/{method}/seed{seed}.json").read_text())["indices"]
        for method in ("random", "rnd")
        for seed in (0, 1)
    }
    assert len(selections) == 4 and all(len(s) == 40 for s in selections.values())
    union = set().union(*selections.values())
    assert len(union) < sum(len(s) for s in selections.values())  # they do overlap
    assert union & earlier  # seed 0 selections start with the earlier run's picks
    batch = TINY_CONFIG["labelling"]["batch_size"]
    plan = planned_jobs(snakemake(workdir, "-n", configfiles=configs).stdout)
    assert plan["label"] == 4 * (40 // batch)  # the seed-0 batches' selections changed: every batch is planned
    snakemake(workdir, "--until", "label", configfiles=configs)
    origins = Counter()
    for (method, seed), indices in selections.items():
        batches = sorted((label_dir / f"selection/md/{method}/seed{seed}").glob("batch*.extxyz"),
                         key=lambda p: int(p.stem.removeprefix("batch")))
        frames = [atoms for path in batches for atoms in read(path, index=":")]
        assert [a.info["frame"] for a in frames] == indices  # batch order is selection order
        origins.update((a.info["frame"], a.info["label_origin"]) for a in frames)
    computed = Counter(frame for (frame, origin), n in origins.items() if origin == "computed" for _ in range(n))
    assert set(computed) == union - earlier and set(computed.values()) == {1}  # each new frame once, no old one


def test_the_planned_cp2k_cost_needs_no_label_job(tmp_path):
    """config/paper.yaml's campaign cost comes from the cutoff series alone: the plan for the estimate holds
    the pool MD, the one-frame cutoff series and the estimate, and not a single label job."""
    from conftest import REPO

    override = tmp_path / "no_setup_check.yaml"  # CP2K need not be installed to plan
    override.write_text(yaml.safe_dump({"labelling": {"check_setup": False}}))
    out = snakemake(tmp_path, "-n", "results/NaCl/label_cost_estimate.json",
                    configfiles=(REPO / "config" / "paper.yaml", override)).stdout
    assert planned_jobs(out) == {"generate_frames": 1, "pool_frames": 1, "cp2k_cutoff_convergence": 1, "label_cost_estimate": 1}


@pytest.mark.workflow
def test_the_estimate_prices_the_labellers_own_md_from_the_measured_single_point(tmp_path):
    """label_cost_estimate.json holds the labeller MD's planned core-hours: config/paper.yaml's 400-atom
    validation cell, (1 + 10) ps at 2 fs, each step the measured 100-ion single point scaled as N^3."""
    import math

    from conftest import REPO

    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    override = tmp_path / "no_setup_check.yaml"
    override.write_text(yaml.safe_dump({"labelling": {"check_setup": False}}))
    (tmp_path / "results/NaCl/pool").mkdir(parents=True)
    (tmp_path / "results/NaCl/pool/md/frames.extxyz").parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "results/NaCl/pool/md/frames.extxyz").write_text("placeholder\n")
    (tmp_path / "results/NaCl/cp2k_cutoff_convergence.csv").write_text(
        "cutoff_Ry,wall_time_s,threads\n600,100,16\n1200,450,16\n")
    snakemake(tmp_path, "--allowed-rules", "label_cost_estimate", "-p", "results/NaCl/label_cost_estimate.json",
              configfiles=(REPO / "config" / "paper.yaml", override))
    estimate = json.loads((tmp_path / "results/NaCl/label_cost_estimate.json").read_text())
    per_label = 450 * 16 / 3600
    assert estimate["core_hours_per_label"] == pytest.approx(per_label)
    md = estimate["labeller_md"]
    n_label = sum(paper["systems"]["NaCl"]["structure"]["composition"].values())
    n_atoms = n_label * math.prod(paper["validation"]["supercell"])
    assert md["n_atoms"] == n_atoms >= 400
    assert md["n_steps"] == (1000 + 10000) / paper["validation"]["md"]["timestep_fs"]
    assert md["core_hours"] == pytest.approx(per_label * (n_atoms / n_label) ** 3
                                             * (md["n_steps"] + 1))
