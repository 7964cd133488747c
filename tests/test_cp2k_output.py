"""CP2K's printed formats from 2023.1 to 2026.2, read to the same known numbers (tests/data/cp2k/README.md).

The 2023.1 files are real runs of Debian's cp2k.psmp; the others are built from the FORMAT statements of their
release. Every format must give the same energy in eV and forces in eV/A, and anything unreadable (a unit
other than Hartree, a changed digit, a cut file, the wrong atoms) must be an error, never a number.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase.io import read
from ase.units import Hartree

from confselect.labelling.cp2k_output import CP2KParseError, parse_abort, parse_forces, parse_output, read_forces

DATA = Path(__file__).resolve().parent / "data" / "cp2k"
SYMBOLS = ["Na", "Cl"]
# The known numbers in ASE's units (eV, eV/A; ASE's Hartree = 27.2113860 eV, Bohr = 0.529177 A), written out
# rather than converted by the code under test: -15.146880206644358 Hartree, and the Hartree/Bohr forces of
# the 2023.1 forces file.
ENERGY_EV = -412.16760436784705
FORCES_EV_A = np.array([[0.07250100, -0.03853673, 0.05995504], [-0.07304299, 0.03887560, -0.06036694]])
FORCE_TOLERANCE = 5e-7  # the files print 1e-8 Hartree/Bohr = 5e-7 eV/A

CONVERGED = ["2023.1", "2024.1", "2025.1", "2025.2"]


def test_the_frame_is_the_one_the_fixtures_were_computed_for():
    frame = read(DATA / "2023.1" / "frame.extxyz")
    assert frame.get_chemical_symbols() == SYMBOLS
    assert np.allclose(frame.positions[0], [0.10, -0.05, 0.08])


@pytest.mark.parametrize("release", CONVERGED)
def test_every_release_reads_to_the_same_energy_and_forces(release):
    out = parse_output((DATA / release / "label.out").read_text())
    assert out.version == f"CP2K version {release}"
    assert out.scf_verdict == "converged" and out.scf_converged
    assert out.scf_iterations == 15 and out.last_scf_error == pytest.approx(2e-8)
    assert out.abort_message is None and out.ended
    assert out.energy_hartree == pytest.approx(-15.146880206644358, abs=1e-12)
    assert out.energy_hartree * Hartree == pytest.approx(ENERGY_EV, abs=1e-6)
    forces = read_forces(DATA / release / "label-forces-1_0.xyz", SYMBOLS)
    assert np.allclose(forces, FORCES_EV_A, atol=FORCE_TOLERANCE, rtol=0)


def test_the_forces_file_layouts_differ_as_the_sources_say():
    legacy = (DATA / "2025.2" / "label-forces-1_0.xyz").read_text()
    pipe = (DATA / "2025.1" / "label-forces-1_0.xyz").read_text()
    assert "ATOMIC FORCES in [a.u.]" in legacy and "FORCES|" not in legacy
    assert "FORCES| Atomic forces [hartree/bohr]" in pipe and "ATOMIC FORCES" not in pipe
    assert "energy [hartree]  " in (DATA / "2025.1" / "label.out").read_text()
    assert "energy [a.u.]:" in (DATA / "2024.1" / "label.out").read_text()


def test_forces_printed_to_the_output_of_2026():
    text = (DATA / "2026.2" / "forces_in_output.out").read_text()
    out = parse_output(text)
    assert out.energy_hartree == pytest.approx(-15.146880206644358, abs=1e-12)
    assert np.allclose(parse_forces(text, SYMBOLS), FORCES_EV_A, atol=FORCE_TOLERANCE, rtol=0)
    assert parse_forces((DATA / "2023.1" / "label.out").read_text(), SYMBOLS) is None  # no forces there


def test_2023_warns_and_prints_an_energy_for_a_non_converged_scf():
    out = parse_output((DATA / "2023.1" / "scf_not_converged.out").read_text())
    assert out.scf_verdict == "not converged" and not out.scf_converged
    assert out.scf_iterations == 2 and out.last_scf_error == pytest.approx(0.45091542)
    assert out.energy_hartree is not None  # printed, never to be used


@pytest.mark.parametrize("release, location", [("2024.1", "qs_scf.F:605"), ("2026.2", "qs_scf.F:702")])
def test_later_releases_abort_on_a_non_converged_scf(release, location):
    out = parse_output((DATA / release / "scf_not_converged.out").read_text())
    assert out.scf_verdict == "not converged" and out.energy_hartree is None
    assert out.scf_iterations == 2
    assert out.abort_message == ("SCF run NOT converged. To continue the calculation regardless, please set the "
                                 "keyword IGNORE_CONVERGENCE_FAILURE.")
    assert out.abort_location == location


def test_abort_box_of_a_real_run():
    out = parse_output((DATA / "2023.1" / "abort.out").read_text())
    assert (out.abort_message, out.abort_location) == ("Use the LSD option for an odd number of electrons",
                                                       "qs_environment.F:1375")
    assert out.scf_verdict is None and out.energy_hartree is None and not out.ended


def test_abort_message_that_starts_above_the_picture():
    # A message of 5 rows starts on row 2 of the box, above the [ABORT] row (print_abort_message centres it).
    message = "x" * 60 + " " + "y" * 60 + " " + "z" * 60 + " " + "w" * 60 + " end"
    box = [" " + "*" * 79,
           " *   ___   " + " " * 68 + "*",
           " *  /   \\  " + "x" * 60 + " " * 8 + "*",
           " * [ABORT] " + "y" * 60 + " " * 8 + "*",
           " *  \\___/  " + "z" * 60 + " " * 8 + "*",
           " *    |    " + "w" * 60 + " " * 8 + "*",
           " *  O/|    " + "end".center(68) + "*",
           " * /| |    " + " " * 68 + "*",
           " * / \\     " + "here.F:1".rjust(67) + " *",
           " " + "*" * 79]
    assert parse_abort("\n".join(box)) == (message, "here.F:1")


def test_an_energy_in_another_unit_is_an_error_not_a_number():
    text = (DATA / "2025.2" / "label.out").read_text()
    with pytest.raises(CP2KParseError, match=r"\[eV\]"):
        parse_output(text.replace("energy [hartree]", "energy [eV]     "))
    with pytest.raises(CP2KParseError, match="not a number"):
        parse_output(text.replace("-15.146880206644358", "*" * 19))


@pytest.mark.parametrize("release", ["2023.1", "2025.1"])
def test_a_changed_digit_above_the_printed_precision_is_caught_by_the_sum_line(release, tmp_path):
    text = (DATA / release / "label-forces-1_0.xyz").read_text()
    for good, bad in (("0.00140992", "0.00141992"), ("1.40992000E-03", "1.41992000E-03")):
        text = text.replace(good, bad)
    (tmp_path / "f.xyz").write_text(text)
    with pytest.raises(CP2KParseError, match="add up"):
        read_forces(tmp_path / "f.xyz", SYMBOLS)


@pytest.mark.parametrize("release", ["2023.1", "2025.1"])
def test_a_cut_forces_file_is_an_error(release, tmp_path):
    lines = (DATA / release / "label-forces-1_0.xyz").read_text().splitlines(keepends=True)
    first_row = next(i for i, line in enumerate(lines)
                     if line.split()[:1] == ["1"] or line.split()[:2] == ["FORCES|", "1"])
    both_rows = lines[: first_row + 2]
    for cut, match in ((both_rows, "no sum line"), (both_rows[:-1] + [both_rows[-1][:30]], "unreadable line")):
        (tmp_path / "f.xyz").write_text("".join(cut))
        with pytest.raises(CP2KParseError, match=match):
            read_forces(tmp_path / "f.xyz", SYMBOLS)


def test_forces_of_other_atoms_are_an_error(tmp_path):
    path = DATA / "2023.1" / "label-forces-1_0.xyz"
    with pytest.raises(CP2KParseError, match="2 force rows, the frame has 3 atoms"):
        read_forces(path, ["Na", "Cl", "Na"])
    with pytest.raises(CP2KParseError, match="atom 1 is Na in the forces, Cl in the frame"):
        read_forces(path, ["Cl", "Na"])
    (tmp_path / "f.xyz").write_text(path.read_text().replace("ATOMIC FORCES in [a.u.]", "ATOMIC FORCES in [eV/A]"))
    with pytest.raises(CP2KParseError, match=r"\[eV/A\]"):
        read_forces(tmp_path / "f.xyz", SYMBOLS)
    (tmp_path / "f.xyz").write_text("\n")
    with pytest.raises(CP2KParseError, match="no atomic forces block"):
        read_forces(tmp_path / "f.xyz", SYMBOLS)
