"""What CP2K printed, read the same way from every release since 2023.1.

The formats come from CP2K's sources (tests/data/cp2k/README.md lists the lines); what changed between
releases:

* **Total energy** (``force_env_methods.F``). 2023.1-2024.3:
  ``ENERGY| Total FORCE_EVAL ( QS ) energy [a.u.]:`` and the value (F26.15 from column 55). From 2025.1 the
  label is built from the program name and ``&PRINT/&PROGRAM_RUN_INFO/ENERGY_UNIT`` (default ``hartree``)
  and has no colon: ``ENERGY| Total FORCE_EVAL ( QS ) energy [hartree]``.
* **Forces** (``force_env_utils.F``, ``write_forces``). 2023.1-2024.3 write ``ATOMIC FORCES in [a.u.]``,
  a ``# Atom Kind Element X Y Z`` header, one row per atom (index, kind, element, three F14.8 values) and
  ``SUM OF ATOMIC FORCES`` with the sum and its norm. 2025.1 writes, to a file as to the output,
  ``FORCES| Atomic forces [hartree/bohr]`` (the unit from ``&PRINT/&FORCES/FORCE_UNIT``), rows
  ``FORCES| <index> x y z |f|`` (ES15.8), ``FORCES| Sum x y z`` and ``FORCES| Total atomic force``. From
  2025.2 a file gets the 2023 layout again (``write_forces_to_file``, "our stable legacy format") and only
  the main output gets the ``FORCES|`` layout. Both are read, from a file or from the output.
* **SCF verdict** (``qs_scf_loop_utils.F``, ``qs_scf.F``): ``*** SCF run converged in N steps ***`` or
  ``Leaving inner SCF loop after reaching N steps.``; then 2023.1 warns ``SCF run NOT converged`` and still
  prints energy and forces, while 2024.1 and later abort with ``SCF run NOT converged. To continue the
  calculation regardless, ...`` unless IGNORE_CONVERGENCE_FAILURE is set.
* **Abort** (``common/cp_error_handling.F``, unchanged in layout): a box of 80 columns, ``*`` borders, a
  9-column picture with ``[ABORT]`` on its left, the message centred on the right (wrapped at 66 columns)
  and the source location on its last row.

A number or unit that cannot be read raises :class:`CP2KParseError`: never a silently wrong label.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import numpy as np
from ase.units import Bohr, Hartree

#: Energy units CP2K prints that mean Hartree (2023-2024: ``a.u.``; 2025+: ``hartree``).
HARTREE_UNITS = ("a.u.", "hartree")
#: Force units that mean Hartree/Bohr (2023-2024 and files from 2025.2: ``a.u.``; 2025.1: ``hartree/bohr``).
HARTREE_PER_BOHR_UNITS = ("a.u.", "hartree/bohr")
#: Lines of the output and of stderr a failure record keeps.
TAIL_LINES = 20


class CP2KParseError(ValueError):
    """CP2K's output or forces file holds something that cannot be read as a trustworthy number."""


@dataclasses.dataclass(frozen=True)
class CP2KOutput:
    """What one CP2K run reported.

    ``scf_verdict`` is ``"converged"``, ``"not converged"`` (the warning of 2023.1 or the abort of later
    releases) or ``None`` when the run stopped before any SCF ended. ``ended`` says whether CP2K printed its
    closing ``PROGRAM ENDED AT`` banner.
    """

    version: str | None
    energy_hartree: float | None
    scf_iterations: int
    scf_verdict: str | None
    last_scf_error: float | None
    abort_message: str | None
    abort_location: str | None
    ended: bool

    @property
    def scf_converged(self) -> bool:
        return self.scf_verdict == "converged"


_ENERGY = re.compile(
    r"^\s*ENERGY\|\s+Total FORCE_EVAL \(\s*\w+\s*\) energy \[(?P<unit>[^\]]*)\]:?(?P<value>.*)$", re.M
)
_VERSION = re.compile(r"CP2K\|\s+version string:\s+(.*?)\s*$", re.M)


def read_energy(text: str) -> float | None:
    """The last total energy (Hartree) in a CP2K output, ``None`` if there is none.

    Raises :class:`CP2KParseError` if the line is there but its unit is not Hartree (``ENERGY_UNIT`` set
    to something else) or its value is not a finite number (Fortran prints ``*`` on overflow).
    """
    matches = list(_ENERGY.finditer(text))
    if not matches:
        return None
    line = matches[-1]
    unit = line["unit"].strip()
    if unit.lower() not in HARTREE_UNITS:
        raise CP2KParseError(f"total energy printed in [{unit}], expected one of {HARTREE_UNITS}")
    return _number(line["value"].strip(), "total energy")


def _number(token: str, what: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise CP2KParseError(f"{what}: {token!r} is not a number") from None
    if not math.isfinite(value):
        raise CP2KParseError(f"{what}: {token!r} is not finite")
    return value


def scf_table(text: str) -> tuple[int, float | None]:
    """SCF steps and the last convergence value, from the numbered rows of every SCF table.

    A table starts with ``Step  Update method ... Convergence``; a row is ``step method alpha time
    convergence total-energy change`` (``qs_scf_output.F``); the table ends at the SCF verdict.
    """
    steps, last_error, in_table = 0, None, False
    for line in text.splitlines():
        tokens = line.split()
        if "Update method" in line and "Convergence" in line:
            in_table = True
        elif in_table and ("SCF run" in line or "Leaving inner SCF loop" in line):
            in_table = False
        elif in_table and len(tokens) >= 6 and tokens[0].isdigit():
            steps += 1
            try:
                last_error = float(tokens[-3])
            except ValueError:
                last_error = None
    return steps, last_error


def parse_abort(text: str) -> tuple[str | None, str | None]:
    """(message, source location) of the first ``[ABORT]`` box of a CP2K output, or (None, None).

    The box's rows are `` *`` + 9 columns of picture + text + ``*``; the message may start above the
    ``[ABORT]`` row (it is centred vertically), so the whole box between its two rows of stars is read.
    """
    lines = text.splitlines()
    at = next((i for i, line in enumerate(lines) if "[ABORT]" in line), None)
    if at is None:
        return None, None

    start = next((i for i in range(at, -1, -1) if _box_border(lines[i])), at - 1)
    end = next((i for i in range(at, len(lines)) if _box_border(lines[i])), len(lines))
    rows = [line.rstrip()[11:].rstrip("*").strip() for line in lines[start + 1 : end]]
    rows = [row for row in rows if row]
    if not rows:
        return "", None
    location = rows[-1] if re.fullmatch(r"\S+:\d+", rows[-1]) else None
    message = " ".join(rows[:-1] if location else rows)
    return message, location


def _box_border(line: str) -> bool:
    """The top or bottom row of the abort box: a run of stars only."""
    return len(line.strip()) >= 40 and set(line.strip()) == {"*"}


def parse_output(text: str) -> CP2KOutput:
    """Version, energy, SCF steps and verdict, and any abort message of a CP2K output (any release)."""
    steps, last_error = scf_table(text)
    abort_message, abort_location = parse_abort(text)
    if "SCF run NOT converged" in text or "SCF run NOT converged" in (abort_message or ""):
        verdict = "not converged"
    elif "SCF run converged" in text:
        verdict = "converged"
    else:
        verdict = None
    version = _VERSION.search(text)
    return CP2KOutput(
        version=version.group(1) if version else None,
        energy_hartree=read_energy(text),
        scf_iterations=steps,
        scf_verdict=verdict,
        last_scf_error=last_error,
        abort_message=abort_message,
        abort_location=abort_location,
        ended="PROGRAM ENDED AT" in text,
    )


# ------------------------------------------------------------------------------------------- forces
_LEGACY_HEADER = re.compile(r"^\s*ATOMIC FORCES in \[(?P<unit>[^\]]*)\]\s*$")
_LEGACY_ROW = re.compile(r"^\s*(?P<index>\d+)\s+\d+\s+(?P<element>[A-Za-z]\w*)\s+(?P<f>\S+\s+\S+\s+\S+)\s*$")
_LEGACY_SUM = re.compile(r"^\s*SUM OF ATOMIC FORCES\s+(?P<f>\S+\s+\S+\s+\S+)\s+\S+\s*$")
_PIPE_HEADER = re.compile(r"^\s*FORCES\|\s+Atomic forces \[(?P<unit>[^\]]*)\]\s*$")
_PIPE_ROW = re.compile(r"^\s*FORCES\|\s+(?P<index>\d+)\s+(?P<f>\S+\s+\S+\s+\S+)\s+\S+\s*$")
_PIPE_SUM = re.compile(r"^\s*FORCES\|\s+Sum\s+(?P<f>\S+\s+\S+\s+\S+)\s*$")
_LAYOUTS = ((_LEGACY_HEADER, _LEGACY_ROW, _LEGACY_SUM), (_PIPE_HEADER, _PIPE_ROW, _PIPE_SUM))


def parse_forces(text: str, symbols: list[str], source: str = "forces") -> np.ndarray | None:
    """Forces (eV/A) of the last atomic-forces block in ``text``; ``None`` if it holds no such block.

    Checks, each a :class:`CP2KParseError` naming ``source``: a Hartree/Bohr unit, one row per atom in
    index order (and, where printed, the element of each), finite numbers, the closing sum line (a file cut
    short has none) and that the rows add up to that sum within the printed precision (a changed digit
    does not).
    """
    lines = text.splitlines()
    blocks = [(i, layout) for i, line in enumerate(lines) for layout in _LAYOUTS if layout[0].match(line)]
    if not blocks:
        return None
    start, (header, row_pattern, sum_pattern) = blocks[-1]
    unit = header.match(lines[start])["unit"].strip()
    if unit.lower() not in HARTREE_PER_BOHR_UNITS:
        raise CP2KParseError(f"{source}: forces printed in [{unit}], expected one of {HARTREE_PER_BOHR_UNITS}")
    rows, printed_sum = [], None
    for line in lines[start + 1 :]:
        if (match := sum_pattern.match(line)) is not None:
            printed_sum = match["f"].split()
            break
        if (match := row_pattern.match(line)) is not None:
            rows.append(match)
        elif rows and line.strip():
            raise CP2KParseError(f"{source}: unreadable line after force row {len(rows)}: {line.strip()!r}")
    n_atoms = len(symbols)
    if len(rows) != n_atoms:
        raise CP2KParseError(f"{source}: {len(rows)} force rows, the frame has {n_atoms} atoms")
    tokens = []
    for k, row in enumerate(rows):
        if int(row["index"]) != k + 1:
            raise CP2KParseError(f"{source}: force row {k + 1} is for atom {row['index']}")
        element = row.groupdict().get("element")
        if element is not None and element.lower() != symbols[k].lower():
            raise CP2KParseError(f"{source}: atom {k + 1} is {element} in the forces, {symbols[k]} in the frame")
        tokens.append(row["f"].split())
    if printed_sum is None:
        raise CP2KParseError(f"{source}: no sum line after {n_atoms} force rows (file cut short?)")
    forces = np.array([[_number(t, f"{source}, atom {k + 1}") for t in row] for k, row in enumerate(tokens)])
    _check_sum(forces, tokens, printed_sum, source)
    return forces * Hartree / Bohr


def _half_unit(token: str) -> float:
    """Half a unit in the last printed digit of a Fortran F or ES number: its rounding error bound."""
    mantissa, _, exponent = token.upper().partition("E")
    decimals = len(mantissa.partition(".")[2])
    return 0.5 * 10.0 ** (int(exponent or 0) - decimals)


def _check_sum(forces: np.ndarray, tokens: list[list[str]], printed_sum: list[str], source: str) -> None:
    """The rows must add up to CP2K's own sum, to within the rounding of everything printed."""
    total = np.array([_number(t, f"{source}, sum line") for t in printed_sum])
    bound = np.array([sum(_half_unit(row[j]) for row in tokens) + _half_unit(printed_sum[j]) for j in range(3)])
    mismatch = np.abs(forces.sum(axis=0) - total)
    if np.any(mismatch > 1.01 * bound + 1e-12 * np.abs(forces).sum(axis=0)):
        raise CP2KParseError(
            f"{source}: the force rows add up to {forces.sum(axis=0).tolist()}, CP2K's sum line says "
            f"{total.tolist()} (corrupted file?)"
        )


def read_forces(path: Path, symbols: list[str]) -> np.ndarray:
    """Forces (eV/A) from a ``&PRINT/&FORCES`` file; :class:`CP2KParseError` if it holds no forces block."""
    forces = parse_forces(Path(path).read_text(errors="replace"), list(symbols), source=Path(path).name)
    if forces is None:
        raise CP2KParseError(f"{Path(path).name}: no atomic forces block")
    return forces


def tail(path: Path, n: int = TAIL_LINES) -> str:
    """The last ``n`` non-empty lines of a text file, joined by `` || `` on one line ('' if absent).

    One line, with backslashes and double quotes replaced, because it is stored in an extended-XYZ comment
    line (ASE's reader does not give a backslash back unchanged).
    """
    try:
        lines = [line.rstrip() for line in Path(path).read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return " || ".join(lines[-n:]).replace("\\", "/").replace('"', "'")
