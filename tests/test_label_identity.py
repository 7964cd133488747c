"""A label's identity is its physics: machine settings (marked ``x-machine`` in the schema) never move a label,
physics settings always do; labels computed elsewhere enter the store only after their checks."""

import copy

import numpy as np
import pytest
import yaml
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write

from conftest import REPO
from confselect.config import SCHEMA, labeller_id, machine_setting_names, validate_config
from confselect.labelling import LabelFailure, failure_record
from confselect.labelling.store import LabelStore, configuration_key
from confselect.labelling.store_import import import_labels, main

SCHEMA_DOC = yaml.safe_load(SCHEMA.read_text())
LABELLER_SECTIONS = SCHEMA_DOC["properties"]["labelling"]["properties"]


def config_with(labeller, settings=None):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["systems"]["NaCl"]["labeller"] = labeller
    config["labelling"][labeller] = settings or {}
    validate_config(config, SCHEMA)
    return config


def changed(value, prop):
    """Another valid value of a setting, of the same type."""
    if "enum" in prop:
        return next(v for v in prop["enum"] if v != value)
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 1.5
    if isinstance(value, str):
        return value + "_other"
    if isinstance(value, dict):
        if "properties" in prop:  # a closed section: another value of its first setting
            key, sub = next(iter(prop["properties"].items()))
            return {**value, key: changed(value.get(key), sub)}
        return {**value, "X": "other"}
    if isinstance(value, list):
        return [v * 1.5 if isinstance(v, float) else v for v in value]
    if value is None:  # a nullable setting: a value of its other type
        kinds = prop.get("type", [])
        if "string" in kinds:
            return "mpirun -np {ranks}"
        if "object" in kinds:
            return {"FORCE_EVAL": {"DFT": {"SCF": {"EPS_SCF": 1e-7}}}}
        return 1.0
    raise TypeError(f"no change defined for {value!r}")


def settings_of(labeller):
    section = LABELLER_SECTIONS[labeller]
    return [(labeller, key) for key in section.get("properties", {})]


SETTINGS = [s for labeller in ("xtb", "cp2k") for s in settings_of(labeller)]
SCHEMA_DEFAULTS_CP2K = config_with("cp2k")["labelling"]["cp2k"]


def test_every_labeller_has_a_closed_schema():
    for name in ("classical", "xtb", "cp2k"):
        assert LABELLER_SECTIONS[name].get("additionalProperties") is False, name


@pytest.mark.parametrize("labeller, key", SETTINGS)
def test_machine_settings_keep_the_id_and_physics_settings_change_it(labeller, key):
    # more than one MPI rank needs a launcher (a machine setting itself): both sides have one
    needs = {"launcher": "mpirun -np {ranks}"} if key == "ranks" else {}
    base = config_with(labeller, needs)
    prop = LABELLER_SECTIONS[labeller]["properties"][key]
    value = changed(base["labelling"][labeller].get(key), prop)
    other = config_with(labeller, {**needs, key: value})
    same = labeller_id(other, "NaCl") == labeller_id(base, "NaCl")
    assert same == bool(prop.get("x-machine")), (key, value)


def test_machine_markers_are_what_the_id_leaves_out():
    assert machine_setting_names("labelling", "xtb") == {"max_iterations"}
    assert machine_setting_names("labelling", "classical") == set()
    assert {"executable", "launcher", "ranks", "threads", "timeout_s", "data_dir"} <= machine_setting_names("labelling", "cp2k")
    assert not {"cutoff_Ry", "xc", "basis", "eps_scf"} & machine_setting_names("labelling", "cp2k")


def test_writing_a_default_explicitly_keeps_the_id():
    base = config_with("xtb")
    explicit = config_with("xtb", {"method": "GFN1-xTB", "accuracy": 1.0})
    assert labeller_id(explicit, "NaCl") == labeller_id(base, "NaCl")


# ------------------------------------------------------------------------------------------------ import
def salt(shift=0.0):
    return Atoms("NaCl", positions=[[0, 0, 0], [2.8 + shift, 0, 0]], cell=[5.6] * 3, pbc=True)


def labelled(atoms, energy=-7.5, labeller="cp2k-0123abcd"):
    out = atoms.copy()
    out.calc = SinglePointCalculator(out, energy=energy, forces=np.full((len(atoms), 3), 0.1))
    out.info["labeller_id"] = labeller
    return out


def test_import_checks_each_label_and_never_replaces_one(tmp_path):
    remote = LabelStore(tmp_path / "remote", "cp2k-0123abcd")
    good = remote.put(labelled(salt()))
    tampered = remote.put(labelled(salt(0.2)))
    moved = read(tampered)  # a stored file whose positions changed after it was stored
    moved.positions[1, 0] += 0.05
    write(tampered, moved, format="extxyz")
    other_physics = remote.put(labelled(salt(0.4), labeller="cp2k-ffffffff"))
    transient = remote.put(failure_record(salt(0.6), "cp2k", LabelFailure("time limit")), original=salt(0.6))
    rec = read(transient)
    rec.info.update(label_transient=True, labeller_id="cp2k-0123abcd")
    write(transient, rec, format="extxyz")

    local = LabelStore(tmp_path / "local", "cp2k-0123abcd")
    local.put(labelled(salt(), energy=-1.0))  # already here, computed locally: kept
    report = import_labels([tmp_path / "remote"], local, "cp2k-0123abcd")
    reasons = dict(report.rejected)
    assert str(good) in report.already_stored
    assert "does not hash to its file name" in reasons[str(tampered)]
    assert "made under labeller cp2k-ffffffff" in reasons[str(other_physics)]
    assert "transient" in reasons[str(transient)]
    assert read(local.get(salt())).get_potential_energy() == -1.0
    assert report.imported == []
    # --accept vouches for another id's physics
    report = import_labels([other_physics], local, "cp2k-0123abcd", accept_ids=["cp2k-ffffffff"])
    assert report.imported == [str(other_physics)]
    assert read(local.get(salt(0.4))).info["labeller_id"] == "cp2k-0123abcd"


def test_import_replaces_a_failure_record_with_a_label(tmp_path):
    local = LabelStore(tmp_path / "local", "xtb-0123abcd")
    local.put(failure_record(salt(), "xtb", LabelFailure("SCF not converged")), original=salt())
    run_dir = tmp_path / "results" / "NaCl" / "labels" / "xtb-0123abcd" / "pool"
    run_dir.mkdir(parents=True)
    source = run_dir / "7.extxyz"
    plain = labelled(salt(), labeller=None)
    del plain.info["labeller_id"]  # an older label: its id comes from the run's directory
    write(source, plain, format="extxyz")
    report = import_labels([tmp_path / "results"], local, "xtb-0123abcd")
    assert report.replaced_failures == [str(source)]
    assert read(local.get(salt())).get_potential_energy() == -7.5


def test_import_reads_every_frame_of_a_runs_label_batch(tmp_path):
    """A run's label batch holds several frames, each checked on its own: the good ones enter the store, a
    label of other physics is rejected by its position in the batch."""
    batch_dir = tmp_path / "results" / "NaCl" / "labels" / "cp2k-0123abcd" / "selection" / "rnd" / "seed0"
    batch_dir.mkdir(parents=True)
    batch = batch_dir / "batch0.extxyz"
    frames = [labelled(salt(0.1)), labelled(salt(0.2), labeller="cp2k-ffffffff"), labelled(salt(0.3), energy=-2.0)]
    frames[0].info["label_origin"] = "computed"
    write(batch, frames, format="extxyz")
    local = LabelStore(tmp_path / "local", "cp2k-0123abcd")
    report = import_labels([tmp_path / "results"], local, "cp2k-0123abcd")
    assert report.imported == [f"{batch}@0", f"{batch}@2"]
    assert [name for name, _ in report.rejected] == [f"{batch}@1"]
    assert read(local.get(salt(0.3))).get_potential_energy() == -2.0
    assert "label_origin" not in read(local.get(salt(0.1))).info
    assert local.get(salt(0.2)) is None


def test_import_command_reads_the_workflow_config(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"labelling": {"store": str(tmp_path / "store")},
                                      "systems": {"NaCl": {"labeller": "xtb"}}}))
    target = labeller_id(config_with("xtb"), "NaCl")
    source = tmp_path / "in" / f"{configuration_key(salt())}.extxyz"
    source.parent.mkdir()
    write(source, labelled(salt(), labeller=target), format="extxyz")
    assert main([str(tmp_path / "in"), "--configfile", str(config), "--system", "NaCl"]) == 0
    assert "imported 1" in capsys.readouterr().out
    assert LabelStore(tmp_path / "store", target).get(salt()) is not None


# ------------------------------------------------------------------------------- the plan, really labelled
@pytest.fixture(scope="module")
def cp2k_labelled(tmp_path_factory):
    """The held-out frames of an 8-ion cell labelled by the real cp2k.psmp at cheap settings."""
    from conftest import TINY, snakemake

    work = tmp_path_factory.mktemp("cp2k_plan")
    campaign = work / "campaign.yaml"
    campaign.write_text(yaml.safe_dump({
        "sweep": {"methods": ["random"], "n_train": [4], "seeds": [0], "full": {"enabled": False}},
        "test": {"generators": {"md": {"frame_interval_fs": 1000.0}}},  # two held-out frames
        "systems": {"NaCl": {"labeller": "cp2k", "structure": {"composition": {"Na": 4, "Cl": 4}}}},
        "labelling": {"check_setup": False, "cp2k": {
            "cutoff_Ry": 150.0, "rel_cutoff_Ry": 30.0, "xc_smoothing": False, "vdw": None, "eps_scf": 1.0e-5,
            "basis": {"Na": "SZV-MOLOPT-SR-GTH-q9", "Cl": "SZV-MOLOPT-SR-GTH-q7"}}},
    }))
    configs = (TINY, campaign)
    snakemake(work, "--until", "test_set", configfiles=configs)
    return work, configs


@pytest.mark.workflow
@pytest.mark.cp2k
@pytest.mark.parametrize("key", [key for labeller, key in SETTINGS if labeller == "cp2k"])
def test_after_labelling_a_machine_setting_plans_no_label_and_a_physics_setting_plans_all(cp2k_labelled, key, tmp_path):
    from conftest import planned_jobs, snakemake

    work, configs = cp2k_labelled
    base = yaml.safe_load(configs[1].read_text())
    prop = LABELLER_SECTIONS["cp2k"]["properties"][key]
    current = {**SCHEMA_DEFAULTS_CP2K, **base["labelling"]["cp2k"]}.get(key)
    override = tmp_path / "override.yaml"
    needs = {"launcher": "mpirun -np {ranks}"} if key == "ranks" else {}  # more than one rank needs a launcher
    override.write_text(yaml.safe_dump({"labelling": {"cp2k": {**needs, key: changed(current, prop)}}}))
    plan = planned_jobs(snakemake(work, "-n", "--until", "test_set", configfiles=(*configs, override)).stdout)
    assert plan.get("label", 0) == (0 if prop.get("x-machine") else 1), (key, plan)  # the two frames' batch
