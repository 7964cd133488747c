"""Bad configuration stops before any job with one message naming the key."""

import copy
import re

import pytest
import yaml

from conftest import REPO, TINY, snakemake
from confselect.config import SCHEMA, ConfigError, check_config, labeller_id, validate_config
from confselect.selection import METHODS

DEFAULT = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
validate_config(DEFAULT, SCHEMA)  # the schema's defaults filled in, as the Snakefile does


def merged(**changes):
    config = copy.deepcopy(DEFAULT)
    for dotted, value in changes.items():
        *path, last = dotted.split(".")
        node = config
        for key in path:
            node = node[key]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return config


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"sweep.methods": ["random", "bogus"]}, "sweep.methods[1]"),
        ({"sweep.n_train": [8, 5000]}, "sweep.n_train[1]"),
        ({"sweep.systems": ["LiF"]}, "sweep.systems[0]"),
        ({"systems.NaCl.potential.pairs.Na-Cl": None}, "systems.NaCl.potential.pairs"),
        ({"selection": {"nope": {}}}, "selection.nope"),
        ({"selection": {"rnd": {"hiden": [8]}}}, "selection.rnd.hiden: not an option of 'rnd'"),
        ({"selection": {"classical_qbc": {"n_committee": 1}}}, "selection.classical_qbc: classical_qbc: n_committee must be an integer >= 2"),
        ({"validation.density.equilibration_fs": DEFAULT["validation"]["density"]["duration_fs"]},
         f"validation.density.duration_fs = {DEFAULT['validation']['density']['duration_fs']:g} fs leaves 0 samples"),
        ({"sweep.n_select": 16}, f"sweep.n_select = 16 is below the largest sweep.n_train ({max(DEFAULT['sweep']['n_train'])})"),
        ({"sweep.n_select": 100000}, "sweep.n_select = 100000 exceeds the pool"),
        ({"validation.reference": {"duration_fs": 1000.0}},
         "validation.reference.duration_fs = 1000.0 differs from validation.md.duration_fs = 20000.0"),
        ({"validation.reference": {"fit_window_ps": [0.2, 0.6]}},
         "validation.reference.fit_window_ps = [0.2, 0.6] differs from validation.transport.fit_window_ps = [0.5, 1.5]"),
        ({"validation.reference": {"equilibration_fs": 0.0}},
         "validation.reference.equilibration_fs = 0.0 differs from validation.md.equilibration_fs = 2000.0"),
        ({"validation.density.reference_duration_fs": 20000.0},
         "validation.density.reference_duration_fs = 20000.0 differs from validation.density.duration_fs = 8000.0"),
        ({"validation.transport": {"fit_window_ps": [0.5, 2.5], "n_blocks": 5}},
         "validation.transport.fit_window_ps = [0.5, 2.5] ps must increase and end within 0.5 of a block"),
        ({"validation.state_point": {"density_source": "configured", "densities_g_cm3": {"NaCl": {"1300": 1.5}},
                                     "source": "S"}},
         "validation.state_point.densities_g_cm3.NaCl: no density for ['1100', '1500', '1700'] K"),
        ({"validation.state_point": {"density_source": "configured", "densities_g_cm3": {}, "source": ""}},
         "validation.state_point.source"),
        ({"systems.NaCl.experiment": "molten_NaCl"}, "systems.NaCl.experiment: no entry 'molten_NaCl'"),
        ({"sweep.full": {"enabled": True, "n_train": 600}}, "sweep.full.n_train = 600 exceeds the pool of 500 frames"),
        # active learning: its seed-set method orders the pool, its seed and calibration sets fit the sweep
        ({"sweep.methods": ["random", "al_qbc"], "selection": {"al_qbc": {"initial": "al_qbc"}}},
         "selection.al_qbc.initial: 'al_qbc' is not a one-shot selection method"),
        ({"sweep.methods": ["random", "al_qbc"], "sweep.n_train": [8, 16], "selection": {"al_qbc": {"n_initial": 12}}},
         "selection.al_qbc: n_initial + n_calibration = 20 exceeds the selection length 16"),
        ({"sweep.methods": ["random", "al_qbc"], "sweep.n_train": [8, 16], "sweep.n_select": 64,
          "selection": {"al_qbc": {"n_initial": 12}}}, "selection.al_qbc: no sweep.n_train size reaches"),
        ({"selection": {"al_qbc": {"committee_size": 1}}}, "selection.al_qbc: al_qbc: committee_size must be an integer >= 2"),
    ],
)
def test_check_config_names_the_key(changes, key):
    with pytest.raises(ConfigError, match=re.escape(key)):
        check_config(merged(**changes), METHODS)


def test_default_config_passes():
    check_config(DEFAULT, METHODS)


def test_labeller_id_follows_settings():
    a = labeller_id(DEFAULT, "NaCl")
    changed = merged(**{"systems.NaCl.potential.cutoff_A": 10.0})
    assert labeller_id(changed, "NaCl") != a
    # settings of another labeller do not touch the teacher's labels
    assert labeller_id(merged(**{"labelling.xtb": {"method": "GFN2-xTB"}}), "NaCl") == a


@pytest.mark.parametrize(
    "override, needle",
    [
        ({"sweep": {"methods": ["random", "bogus"]}}, "sweep.methods[1]"),
        ({"sweep": {"n_train": [4, 5000]}}, "sweep.n_train[1] = 5000 exceeds the pool"),
        ({"sweep": {"n_train": [-4]}}, "config key sweep.n_train[0]: -4 is less than the minimum of 1"),
        ({"systems": {"LiF": {"charges_e": {"Li": 1.0, "F": -1.0}}}}, "config key systems.LiF: 'species' is a required"),
        ({"validation": {"reference": {"duration_fs": 1000.0}}},
         "validation.reference.duration_fs = 1000.0 differs from validation.md.duration_fs = 300.0"),
        ({"validation": {"stability": {"max_energy_drift_eV_atom_ps": 0.05}}},
         "config key validation.stability: Additional properties are not allowed"),
    ],
)
def test_workflow_refuses_bad_config_before_any_job(tmp_path, override, needle):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(override))
    proc = snakemake(tmp_path, "-n", configfiles=(TINY, bad), check=False)
    assert proc.returncode != 0
    assert needle in proc.stdout, proc.stdout[-2000:]
    assert not (tmp_path / "results").exists()


def test_missing_cp2k_executable_stops_before_any_job(tmp_path):
    bad = tmp_path / "cp2k.yaml"
    bad.write_text(yaml.safe_dump({"systems": {"NaCl": {"labeller": "cp2k"}},
                                   "labelling": {"cp2k": {"executable": "cp2k-not-installed.psmp"}}}))
    proc = snakemake(tmp_path, "-n", configfiles=(TINY, bad), check=False)
    assert proc.returncode != 0
    assert "Labeller 'cp2k' of systems.NaCl cannot run here" in proc.stdout
    assert "cp2k-not-installed.psmp" in proc.stdout and "apt-get install cp2k" in proc.stdout
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("path", sorted(p.name for p in (REPO / "config").glob("*.yaml") if p.name != "schema.yaml"))
def test_shipped_configs_pass_schema_and_checks(path):
    """Every config file we ship, merged over the default as ``--configfile`` merges it, is a valid run."""
    from snakemake.utils import update_config

    from confselect.config import validate_config

    config = copy.deepcopy(DEFAULT)
    update_config(config, yaml.safe_load((REPO / "config" / path).read_text()))
    validate_config(config, REPO / "config" / "schema.yaml")
    check_config(config, METHODS)
    if path == "all_methods.yaml":
        # every selector; the upper-bound arm is sweep.full, not a selection method to compare
        assert sorted(config["sweep"]["methods"]) == sorted(set(METHODS) - {"full"})


def test_crystal_observables_that_cannot_apply_are_refused_naming_the_key():
    from confselect.config import load_config

    metal = REPO / "tests" / "configs" / "tiny_metal.yaml"
    config = load_config([metal])
    hcp = copy.deepcopy(config)
    hcp["systems"]["Cu"]["structure"].update(crystal="hcp", lattice_constant_A=2.55, supercell=[3, 2, 2])
    with pytest.raises(ConfigError, match=r"validation.crystal.observables: elastic constants C11, C12, C44 need a cubic"):
        check_config(hcp, METHODS)
    hcp["validation"]["crystal"]["observables"] = ["phonons", "vacancy"]
    check_config(hcp, METHODS)  # without elastic constants an hcp crystal is fine
    melt = copy.deepcopy(config)
    melt["systems"]["Cu"].update(phase="crystal", structure={"kind": "random_melt", "composition": {"Cu": 32},
                                                           "density_g_cm3": 8.0, "min_distance_A": 2.0})
    with pytest.raises(ConfigError, match=r"systems.Cu.phase: crystal validation needs a bulk structure"):
        check_config(melt, METHODS)
    unknown = copy.deepcopy(config)
    unknown["sweep"]["pools"] = {"md": ["md", "nope"]}
    with pytest.raises(ConfigError, match=r"sweep.pools.md\[1\]: no pool generator 'nope'"):
        check_config(unknown, METHODS)
    leak = copy.deepcopy(config)
    leak["test"]["generators"]["volumes"] = {}
    with pytest.raises(ConfigError, match=r"test.generators.volumes: the held-out volume_scan repeats a pool"):
        check_config(leak, METHODS)


def test_an_rdf_range_beyond_a_crystals_cell_is_refused_before_any_job():
    from confselect.config import load_config

    config = load_config([REPO / "tests" / "configs" / "tiny_metal.yaml"])  # 32 Cu atoms, a 7.2 A cube
    config["validation"]["rdf"]["rmax_A"] = 5.0
    with pytest.raises(ConfigError, match=r"validation.rdf.rmax_A = 5 A exceeds half the smallest height of "
                                          r"systems.Cu's validation cell \(3.54 A"):
        check_config(config, METHODS)
    config["validation"]["supercell"] = [2, 2, 2]  # 14.5 A: fits
    check_config(config, METHODS)
