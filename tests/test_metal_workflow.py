"""A bulk metal through the whole workflow, by config alone (tests/configs/tiny_metal.yaml): fcc Cu with the
wheel's EAM potential, three pool recipes compared on equal terms, crystal observables in the summary."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from ase.io import read

from conftest import REPO, snakemake
from confselect.crystal import CRYSTAL_COLUMNS
from confselect.labelling.store import configuration_key

pytestmark = pytest.mark.workflow
TINY_METAL = REPO / "tests" / "configs" / "tiny_metal.yaml"
CONFIG = yaml.safe_load(TINY_METAL.read_text())
POOLS = CONFIG["sweep"]["pools"]


@pytest.fixture(scope="module")
def metal_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("metal_run")
    snakemake(workdir, configfiles=(TINY_METAL,))
    return workdir


def test_every_pool_recipe_method_and_size_has_a_summary_row_with_crystal_columns(metal_run):
    summary = pd.read_csv(metal_run / "results/report/summary.csv")
    sweep = CONFIG["sweep"]
    expected = {(p, m, n) for p in POOLS for m in sweep["methods"] for n in sweep["n_train"]}
    assert set(zip(summary["pool"], summary["method"], summary["n_train"])) == expected
    assert set(CRYSTAL_COLUMNS) <= set(summary.columns)
    assert {"lattice_constant_300K_rel_error", "lattice_constant_900K_rel_error"} <= set(summary.columns)
    for row in summary.to_dict("records"):  # a model's crystal errors, or the reason it has none
        has_values = np.isfinite(row["lattice_constant_rel_error"])
        assert has_values != (isinstance(row["crystal_reason"], str) and row["crystal_reason"] != "")
        # the lattice parameter follows the NPT density: a = a_teacher (rho_teacher / rho)^(1/3)
        if np.isfinite(row["density_300K_rel_error_vs_teacher"]):
            assert row["lattice_constant_300K_rel_error"] == pytest.approx(
                (1 + row["density_300K_rel_error_vs_teacher"]) ** (-1 / 3) - 1, rel=1e-9)
    assert summary["sigma_S_cm"].isna().all() if "sigma_S_cm" in summary else True  # no charges, no conductivity


def test_a_pool_recipe_is_the_union_of_its_generators_in_order(metal_run):
    generated = {name: read(metal_run / f"results/Cu/frames/pool/{name}.extxyz", ":")
                 for name in {g for names in POOLS.values() for g in names}}
    for pool, names in POOLS.items():
        frames = read(metal_run / f"results/Cu/pool/{pool}/frames.extxyz", ":")
        assert [a.info["generator"] for a in frames] == [n for n in names for _ in generated[n]]
        expected = [a for n in names for a in generated[n]]
        for got, want in zip(frames, expected):
            assert np.array_equal(got.positions, want.positions) and np.array_equal(got.cell[:], want.cell[:])
    volumes = generated["volumes"]
    assert [a.info["linear_strain"] for a in volumes] == pytest.approx(np.linspace(-0.04, 0.04, 6))
    # static frames carry the teacher's energies: the volume scan's minimum is at the unstrained crystal
    energies = [a.get_potential_energy() for a in volumes]
    assert np.argmin(energies) in (2, 3)


def test_the_held_out_set_covers_every_generator_and_repeats_no_pool_frame(metal_run):
    test = read(metal_run / "results/Cu/test/frames.extxyz", ":")
    assert {a.info["generator"] for a in test} == set(CONFIG["pool"])  # modes: in no recipe, tested anyway
    pool_keys = {configuration_key(a) for name in CONFIG["pool"] if (metal_run / f"results/Cu/frames/pool/{name}.extxyz").exists()
                 for a in read(metal_run / f"results/Cu/frames/pool/{name}.extxyz", ":")}
    assert not pool_keys & {configuration_key(a) for a in test}


def test_the_teachers_crystal_observables_are_its_own(metal_run):
    reference = json.loads((metal_run / "results/Cu/reference/crystal.json").read_text())
    assert reference["eos"]["lattice_constant_A"] == pytest.approx(3.615, abs=2e-3)  # Cu_u3: 3.615 A
    elastic = reference["elastic"]
    bulk_from_elastic = (elastic["C11_GPa"] + 2 * elastic["C12_GPa"]) / 3
    assert reference["eos"]["bulk_modulus_GPa"] == pytest.approx(bulk_from_elastic, rel=0.01)
    assert elastic["C11_GPa"] > elastic["C12_GPa"] > 0 and elastic["C44_GPa"] > 0  # Born stability
    frequencies = np.asarray(reference["phonons"]["frequencies_THz"])
    assert frequencies.min() > -0.05 and 6.0 < frequencies.max() < 9.0
    assert 1.0 < reference["vacancy"]["vacancy_formation_energy_eV"] < 1.6


def test_the_pool_comparison_names_a_recipe_per_observable_and_size(metal_run):
    table = pd.read_csv(metal_run / "results/report/pools.csv")
    assert set(zip(table["pool"], table["n_train"])) == {(p, n) for p in POOLS for n in CONFIG["sweep"]["n_train"]}
    text = (metal_run / "results/report/pools.md").read_text()
    for n in CONFIG["sweep"]["n_train"]:
        block = table[table["n_train"] == n]
        best = block.loc[block["force_l4_eV_A"].idxmin(), "pool"]
        row = next(line for line in text.splitlines() if line.startswith("| force_l4_eV_A |"))
        cell = row.split("|")[2 + sorted(CONFIG["sweep"]["n_train"]).index(n)]
        assert f"**{best}**" in cell
    verdict = (metal_run / "results/report/verdict.md").read_text()
    assert all(f", pool {p}" in verdict for p in POOLS)  # one verdict block per recipe
    assert "Pool recipes at equal labels" in (metal_run / "results/report/index.html").read_text()


def test_a_changed_pool_recipe_replans_its_own_arm_only(metal_run, tmp_path):
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump({"sweep": {"pools": {**POOLS, "static": ["volumes", "strains"]}}}))
    proc = snakemake(metal_run, "-n", "--rerun-triggers", "mtime", "params", "input", "code", "software-env",
                     configfiles=(TINY_METAL, changed))
    from conftest import planned_jobs

    jobs = planned_jobs(proc.stdout)
    per_arm = len(CONFIG["sweep"]["methods"]) * len(CONFIG["sweep"]["n_train"])
    assert jobs["train"] == per_arm and jobs["ml_md"] == per_arm  # the static arm's models, no other
    assert jobs.get("generate_frames", 0) == 0  # generators unchanged
