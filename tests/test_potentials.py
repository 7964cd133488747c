"""A system's potential from config alone: LAMMPS pair styles with their files, checked before any job, with a
label identity that follows the files' content, not their path."""

import copy
import shutil

import numpy as np
import pytest
import yaml

from conftest import REPO, snakemake
from confselect.config import ConfigError, labeller_id, load_config
from confselect.system_config import check_system
from confselect.potentials import file_elements, lammps_potential_commands, wheel_potentials_dir

TINY_METAL = REPO / "tests" / "configs" / "tiny_metal.yaml"
CU = yaml.safe_load(TINY_METAL.read_text())["systems"]["Cu"]


@pytest.mark.parametrize(
    "potential, needle",
    [
        ({"pair_style": "eam/nonexistent"},
         "systems.Cu.potential: LAMMPS rejects pair_style 'eam/nonexistent': ERROR: Unrecognized pair style"),
        ({"pair_coeff": ["1 1 Cu_missing.eam"], "files": ["Cu_missing.eam"]},
         "systems.Cu.potential.files[0]: potential file 'Cu_missing.eam' not found"),
        ({"pair_coeff": ["1 1 Ni_u3.eam"], "files": ["Ni_u3.eam"]},
         "systems.Cu.potential.pair_coeff[0]: file Ni_u3.eam parameterises ['Ni'], not species ['Cu']"),
        ({"pair_style": "eam/alloy", "pair_coeff": ["* * CuNi.eam.alloy Ni"], "files": ["CuNi.eam.alloy"]},
         "systems.Cu.potential.pair_coeff[0]: type of species 'Cu' mapped to element 'Ni'"),
    ],
)
def test_bad_potential_stops_the_workflow_before_any_job(tmp_path, potential, needle):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"systems": {"Cu": {"potential": potential}}}))
    proc = snakemake(tmp_path, "-n", configfiles=(TINY_METAL, bad), check=False)
    assert proc.returncode != 0
    assert needle in proc.stdout, proc.stdout[-2000:]
    assert "generate_frames" not in proc.stdout  # nothing was planned


def test_label_identity_follows_the_file_content_not_its_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config([TINY_METAL])
    bundled = labeller_id(config, "Cu")
    copy_path = tmp_path / "mine" / "Cu_u3.eam"
    copy_path.parent.mkdir()
    shutil.copy(wheel_potentials_dir() / "Cu_u3.eam", copy_path)
    config["systems"]["Cu"]["potential"]["files"] = [str(copy_path)]
    config["systems"]["Cu"]["potential"]["pair_coeff"] = [f"1 1 {copy_path}"]
    assert labeller_id(config, "Cu") == bundled  # same content elsewhere: the same labels
    with open(copy_path, "a") as handle:
        handle.write("\n")
    from confselect.potentials import file_digest

    file_digest.cache_clear()
    assert labeller_id(config, "Cu") != bundled  # edited content: other labels


def test_commands_put_resolved_paths_in_the_pair_coeff_lines():
    cmds = lammps_potential_commands(CU)
    assert cmds[0] == "pair_style eam"
    assert cmds[1] == f"pair_coeff 1 1 {wheel_potentials_dir() / 'Cu_u3.eam'}"
    assert not any(c.startswith("set type") for c in cmds)  # no charges, no charge commands


def test_a_many_body_potential_with_an_element_mapping_runs_as_lammps_does():
    """eam/alloy with ``* * file Cu``: the teacher's single point equals LAMMPS's own cohesive energy."""
    from ase.build import bulk

    from confselect.classical import load_lammps, teacher_calculator

    system = copy.deepcopy(CU)
    system["potential"].update(pair_style="eam/alloy", pair_coeff=["* * Cu_mishin1.eam.alloy Cu"],
                               files=["Cu_mishin1.eam.alloy"])
    check_system(system, "systems.Cu")
    atoms = bulk("Cu", "fcc", a=3.615, cubic=True).repeat((2, 2, 2))
    atoms.calc = teacher_calculator(system)
    energy = atoms.get_potential_energy() / len(atoms)
    lmp = load_lammps().lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    lmp.commands_list(["units metal", "atom_style atomic", "lattice fcc 3.615", "region b block 0 2 0 2 0 2",
                       "create_box 1 b", "create_atoms 1 box", "mass 1 63.546",
                       "pair_style eam/alloy", f"pair_coeff * * {wheel_potentials_dir() / 'Cu_mishin1.eam.alloy'} Cu",
                       "run 0"])
    assert energy == pytest.approx(lmp.get_thermo("pe") / lmp.get_natoms(), abs=1e-9)
    assert -3.6 < energy < -3.5  # Mishin's Cu: cohesive energy 3.54 eV/atom
    assert np.abs(atoms.get_forces()).max() < 1e-8  # perfect crystal


def test_file_elements_reads_the_formats_it_knows():
    potentials = wheel_potentials_dir()
    assert file_elements(potentials / "Cu_u3.eam", "eam") == ["Cu"]
    assert file_elements(potentials / "CuNi.eam.alloy", "eam/alloy") == ["Ni", "Cu"]  # the file's own order
    assert file_elements(potentials / "SiC.tersoff", "tersoff") == ["C", "Si"]
    assert file_elements(potentials / "Si.sw", "sw") == ["Si"]
    assert file_elements(potentials / "Cu_u3.eam", "lj/cut") is None  # unknown format: not checked


def test_a_tosi_fumi_system_needs_its_charges():
    config = load_config([])
    nacl = copy.deepcopy(config["systems"]["NaCl"])
    del nacl["charges_e"]["Cl"]
    with pytest.raises(ConfigError, match=r"systems.NaCl.charges_e: the Tosi-Fumi potential needs a charge for \['Cl'\]"):
        check_system(nacl, "systems.NaCl")
