"""Write the fixtures of the CP2K releases that cannot run here, from the 2023.1 run and those releases' FORMATs.

The numbers (energy, forces, SCF table) are those of the real CP2K 2023.1 run in ``2023.1/``; what each
newer release prints around them is rebuilt from its Fortran WRITE/FORMAT statements (README.md lists the
source lines). The Fortran edit descriptors used: ``Tn`` (continue at column n), ``nX`` (n blanks), ``A``,
``In``, ``Fw.d`` and ``ESw.d``. Rerun after changing the 2023.1 files:

    python tests/data/cp2k/build_fixtures.py

It first rebuilds the 2023.1 forces file from its own FORMATs and checks that this gives the real file back
byte for byte, which checks the emulation of the edit descriptors.
"""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
REAL = HERE / "2023.1"


def line(*fields) -> str:
    """A Fortran record from (column, text) pairs: ``Tn`` positioning, text written from column n on."""
    out = ""
    for column, text in fields:
        out = out.ljust(column - 1)[: column - 1] + text
    return out


def es(value: float, width: int, digits: int) -> str:
    """Fortran ESw.d: one non-zero digit before the point, a two-digit exponent."""
    return f"{value:{width}.{digits}E}"


def read_real_forces() -> tuple[list[tuple[int, int, str]], list[list[float]], list[float]]:
    rows, forces = [], []
    text = (REAL / "label-forces-1_0.xyz").read_text()
    for raw in text.splitlines():
        parts = raw.split()
        if len(parts) == 6 and parts[0].isdigit():
            rows.append((int(parts[0]), int(parts[1]), parts[2]))
            forces.append([float(x) for x in parts[3:]])
    return rows, forces, [sum(f[j] for f in forces) for j in range(3)]


def legacy_forces(n: int = 8) -> str:
    """force_env_utils.F write_forces (2023.1-2024.3) = write_forces_to_file (2025.2 on), NDIGITS n."""
    rows, forces, total = read_real_forces()
    w = n + 6
    out = ["", line((2, "ATOMIC FORCES in [a.u.]")), "",
           line((2, "# Atom"), (11, "Kind"), (18, "Element"), (35, "X")) + " " * w + "Y" + " " * w + "Z"]
    for (index, kind, element), f in zip(rows, forces):
        out.append(line((2, f"{index:6d} {kind:6d}"), (21, element), (28, "".join(f" {x:{n + 6}.{n}f}" for x in f))))
    norm = sum(x * x for x in total) ** 0.5
    out.append(line((2, "SUM OF ATOMIC FORCES"), (28, "".join(f" {x:{n + 6}.{n}f}" for x in [*total, norm]))))
    return "\n".join(out) + "\n"


def pipe_forces(n: int = 8) -> str:
    """force_env_utils.F write_forces of 2025.1 (to a file and to the output), = write_forces_to_screen from
    2025.2 on; label "Atomic", FORCE_UNIT hartree/bohr, NDIGITS n."""
    _, forces, total = read_real_forces()
    w = n + 7
    header = line((2, "FORCES| Atomic forces [hartree/bohr]"))
    columns = line((2, "FORCES|   Atom"), (20, " x ")) + " " * (n + 5) + " y " + " " * (n + 5) + " z " + " " * (n + 6) + "|f|"
    out = ["", header, columns]
    for index, f in enumerate(forces, start=1):
        norm = sum(x * x for x in f) ** 0.5
        out.append(line((2, f"FORCES|{index:7d}"), (16, "".join(" " + es(x, w, n) for x in f) + "  " + es(norm, w, n))))
    out.append(line((2, "FORCES| Sum"), (16, "".join(" " + es(x, w, n) for x in total))))
    out.append(line((2, "FORCES| Total atomic force"), (3 * (n + 8) + 18, es(sum(x * x for x in total) ** 0.5, w, n))))
    return "\n".join(out) + "\n"


def energy_2025(energy: float) -> str:
    """force_env_methods.F from 2025.1: FMT "(/,T2,A,T55,F26.15)", ENERGY_UNIT hartree (its default)."""
    return line((2, "ENERGY| Total FORCE_EVAL ( QS ) energy [hartree]"), (55, f"{energy:26.15f}"))


def wrap(message: str, rowlen: int) -> list[str]:
    """cp_error_handling.F next_linebreak, as print_abort_message calls it (1-based positions kept)."""
    n, a, b, pieces = len(message.rstrip()), 1, -1, []
    while b < n:
        if n - a <= rowlen:
            b = n
        else:
            i = message[a : a + 1 + rowlen].rfind(" ") + 1  # INDEX(message(a+1:a+1+rowlen), " ", BACK=.TRUE.)
            b = a + rowlen - 1 if i == 0 else a + i
        pieces.append(message[a - 1 : b])
        a = b + 1
    return pieces


def abort_box(message: str, location: str) -> str:
    """cp_error_handling.F print_abort_message (same layout 2023.1 to 2026.2)."""
    img = ["   ___   ", "  /   \\  ", " [ABORT] ", "  \\___/  ", "    |    ", "  O/|    ", " /| |    ", " / \\     "]
    img_height, img_width, screen_width = 8, 9, 80
    txt_width = screen_width - img_width - 5
    pieces = wrap(message, txt_width)
    msg_height = len(pieces)
    msg_start, img_start = ((img_height - msg_height) // 2 + 1, 1) if img_height > msg_height else (1, msg_height - img_height + 2)
    out = ["", " " + "*" * (screen_width - 1)]
    c = 0
    for i in range(1, max(img_height - 1, msg_height) + 1):
        row = " *" + (" " * img_width if i < img_start else img[c])
        c += 0 if i < img_start else 1
        if i < msg_start:
            row += " " * (txt_width + 2)
        else:
            text = pieces[i - msg_start].strip() if i - msg_start < msg_height else ""
            fill = (txt_width - len(text)) // 2 + 1
            row += " " * (txt_width - len(text) - fill + 2) + text + " " * fill
        out.append(row + "*")
    out.append(" *" + img[c] + " " * (txt_width - len(location) + 1) + location + " *")
    out += [" " + "*" * (screen_width - 1), ""]
    return "\n".join(out) + "\n"


def with_version(text: str, version: str) -> str:
    """The 2023.1 output with another version string (environment.F, "(T2,A,T42,A40)", right-adjusted)."""
    assert len(version) == len("CP2K version 2023.1")
    return text.replace("CP2K version 2023.1", version)


def write(release: str, name: str, text: str) -> None:
    (HERE / release).mkdir(exist_ok=True)
    (HERE / release / name).write_text(text)


def main() -> None:
    real_forces = (REAL / "label-forces-1_0.xyz").read_text()
    assert legacy_forces() == real_forces, "the FORMAT emulation does not reproduce CP2K 2023.1's forces file"
    assert abort_box("Use the LSD option for an odd number of electrons", "qs_environment.F:1375") in (REAL / "abort.out").read_text(), \
        "the abort box emulation does not reproduce CP2K 2023.1's box"
    out = (REAL / "label.out").read_text()
    energy_line = next(x for x in out.splitlines() if "ENERGY| Total FORCE_EVAL" in x)
    energy = float(energy_line.split()[-1])

    # 2024.1: energy and forces as 2023.1; a non-converged SCF aborts (qs_scf.F:605).
    write("2024.1", "label.out", with_version(out, "CP2K version 2024.1"))
    write("2024.1", "label-forces-1_0.xyz", legacy_forces())
    stuck = (REAL / "scf_not_converged.out").read_text()
    head = stuck[: stuck.index("  Leaving inner SCF loop")]
    write("2024.1", "scf_not_converged.out", with_version(head, "CP2K version 2024.1")
          + "  Leaving inner SCF loop after reaching     2 steps.\n\n"
          + abort_box("SCF run NOT converged. To continue the calculation regardless, please set the keyword "
                      "IGNORE_CONVERGENCE_FAILURE.", "qs_scf.F:605"))

    # 2025.1: energy in [hartree] without a colon; the forces file in the FORCES| layout.
    write("2025.1", "label.out", with_version(out.replace(energy_line, energy_2025(energy)), "CP2K version 2025.1"))
    write("2025.1", "label-forces-1_0.xyz", pipe_forces())

    # 2025.2 (= 2026.1, 2026.2): energy in [hartree]; the file in the legacy layout again.
    write("2025.2", "label.out", with_version(out.replace(energy_line, energy_2025(energy)), "CP2K version 2025.2"))
    write("2025.2", "label-forces-1_0.xyz", legacy_forces())

    # 2026.2 with the forces printed to the output (no FILENAME): the FORCES| layout after the energy.
    printed = out.replace(energy_line, energy_2025(energy) + "\n" + pipe_forces().rstrip("\n"))
    write("2026.2", "forces_in_output.out", with_version(printed, "CP2K version 2026.2"))
    # ... and a 2026.2 run whose SCF does not converge (qs_scf.F:702).
    write("2026.2", "scf_not_converged.out", with_version(head, "CP2K version 2026.2")
          + "  Leaving inner SCF loop after reaching     2 steps.\n\n"
          + abort_box("SCF run NOT converged. To continue the calculation regardless, please set the keyword "
                      "IGNORE_CONVERGENCE_FAILURE.", "qs_scf.F:702"))


if __name__ == "__main__":
    main()
