"""MD with the labeller itself (validation.labeller_md): the labeller behind ASE's calculator interface, its
planned cost, and its place in the workflow (off by default, one job per system when on, `_vs_labeller`
columns in the summary)."""

import json
import shutil

import numpy as np
import pytest
import yaml

from conftest import REPO, TINY, planned_jobs, snakemake
from confselect.classical import ClassicalTeacher
from confselect.structures import random_melt
from confselect.labeller_md import LabellerCalculator, planned_labeller_md_cost

SYSTEM = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["systems"]["NaCl"]


def melt(seed=0):
    """8 ions at the molten density, no pair closer than 2.6 A."""
    return random_melt({"Na": 4, "Cl": 4}, 1.5, seed, 2.6)


def test_the_calculator_gives_the_labellers_energy_and_forces(tmp_path):
    teacher = ClassicalTeacher({"charges_e": SYSTEM["charges_e"], "potential": SYSTEM["potential"]})
    atoms = melt()
    label = teacher.label(atoms)
    atoms.calc = LabellerCalculator(teacher, tmp_path)
    assert atoms.get_potential_energy() == pytest.approx(label.get_potential_energy(), abs=1e-10)
    np.testing.assert_allclose(atoms.get_forces(), label.get_forces(), atol=1e-10)
    assert atoms.calc.calls == 1  # energy and forces of one configuration: one single point
    atoms.positions[0, 0] += 0.01
    atoms.get_forces()
    assert atoms.calc.calls == 2 and atoms.calc.wall_time_s > 0


def test_labeller_nve_conserves_energy(tmp_path):
    """A velocity-Verlet run on the labeller's forces conserves the total energy: forces and energy come from
    the same single point of the same configuration (a stale or shifted force would drift)."""
    from confselect.dynamics import run_md

    teacher = ClassicalTeacher({"charges_e": SYSTEM["charges_e"], "potential": SYSTEM["potential"]})
    run = run_md(melt(1), LabellerCalculator(teacher, tmp_path), "nve", steps=100, timestep_fs=1.0,
                 temperature_K=1300.0, sample_every=10, seed=3)
    total = run.series["conserved_eV"]
    assert not run.stop_reason and run.steps == 100
    assert np.ptp(total) / 8 < 2e-3  # eV per atom over 100 fs
    assert np.ptp(run.series["potential_eV"]) > 10 * np.ptp(total)  # the energy did move between the two


def test_planned_cost_scales_the_measured_single_point():
    cost = planned_labeller_md_cost(0.5, 100, 400, 5000)
    assert cost["core_hours_per_step"] == pytest.approx(0.5 * 64)  # (400 / 100)^3
    assert cost["core_hours"] == pytest.approx(0.5 * 64 * 5001)  # the start and every step
    assert planned_labeller_md_cost(0.5, 100, 400, 5000, scaling_exponent=1.0)["core_hours_per_step"] == 2.0


@pytest.mark.workflow
def test_off_by_default_and_one_job_per_system_when_on(tmp_path):
    plan = planned_jobs(snakemake(tmp_path, "-n").stdout)
    assert "labeller_md" not in plan
    on = tmp_path / "on.yaml"
    on.write_text(yaml.safe_dump({"validation": {"labeller_md": {"enabled": True}}}))
    plan = planned_jobs(snakemake(tmp_path, "-n", configfiles=(TINY, on)).stdout)
    assert plan["labeller_md"] == 1 and plan["summary"] == 1


@pytest.mark.workflow
def test_the_teachers_own_md_is_a_reference_the_summary_compares_with(tiny_run, tmp_path):
    """With the classical labeller, the labeller's MD is the teacher's potential through ASE's integrator: it
    runs its whole length at the reference's state point within every dynamical stability limit, and the
    summary gains `_vs_labeller` errors beside the `_vs_teacher` ones."""
    workdir = tmp_path / "run"
    shutil.copytree(tiny_run, workdir, symlinks=True)
    on = tmp_path / "on.yaml"
    on.write_text(yaml.safe_dump({"validation": {"labeller_md": {"enabled": True, "equilibration_fs": 60.0,
                                                                 "duration_fs": 300.0}}}))
    snakemake(workdir, configfiles=(TINY, on))
    (path,) = (workdir / "results/NaCl/reference").glob("labeller_md_classical-*.json")
    md = json.loads(path.read_text())
    teacher = json.loads((workdir / "results/NaCl/reference/nvt.json").read_text())
    # Every dynamical criterion holds. The RDF-artefact criterion is not asserted here: at 32 ions and 300 fs
    # the teacher's own first-peak onset is a few counted pairs, and a second run of the same potential may
    # cross it by chance (seen: g_Na-Na = 0.115 at 3.08 A against an onset of 3.38 A).
    figures, limits = md["stability_figures"], md["thresholds"]
    assert md["time_survived_fs"] == 360.0  # (60 + 300) fs: the whole run
    assert figures["max_force_eV_A"] < limits["max_force_eV_A"] and figures["min_distance_A"] > limits["min_distance_A"]
    assert abs(figures["conserved_drift_meV_atom_ps"]) < limits["max_conserved_drift_meV_atom_ps"]
    assert figures["max_temperature_drift_K"] < limits["max_temperature_drift_K"]
    assert md["stable"] or md["reason"].startswith("RDF artefact"), md["reason"]
    assert md["state_point"] == teacher["state_point"] and md["n_atoms"] == teacher["n_atoms"]
    assert md["single_points"] == 180 + 1  # (60 + 300) fs / 2 fs, and the start
    import pandas as pd

    summary = pd.read_csv(workdir / "results/report/summary.csv")
    assert {"D_Na_rel_error_vs_labeller", "sigma_rel_error_vs_labeller", "rdf_error_Na-Cl_vs_labeller"} <= set(summary)
    # every model with an RDF (its run got past the equilibration) is compared with both references
    with_rdf = summary["rdf_error_Na-Cl_vs_teacher"].notna()
    assert with_rdf.any() and (summary["rdf_error_Na-Cl_vs_labeller"].notna() == with_rdf).all()
