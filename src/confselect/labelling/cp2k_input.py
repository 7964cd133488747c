"""The CP2K input of a single point: built as a nested dict, merged with overrides, written as text.

The input is held as a nested dict (section name -> dict, keyword -> value) so that any keyword can be
added, replaced or removed through ``overrides`` (a value of ``None`` removes a keyword or section).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from ase import Atoms


def merge_input(base: Mapping, overrides: Mapping | None) -> dict:
    """Return ``base`` with ``overrides`` merged in, section by section.

    Keys are compared case-insensitively (CP2K keywords are). A dict value merges into the section of the
    same name, any other value replaces the keyword, and ``None`` removes the keyword or section.
    """
    merged = {str(k).upper(): v for k, v in base.items()}
    for key, value in (overrides or {}).items():
        key = str(key).upper()
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_input(merged[key], value)
        else:
            merged[key] = value
    return merged


def render_input(tree: Mapping, indent: int = 0) -> str:
    """Write a nested dict as CP2K input text.

    A dict value is a section (its ``"_"`` entry is the section parameter, as in ``&XC_FUNCTIONAL PBE``), a
    list of dicts repeats a section (``&KIND``), a list of scalars is one keyword with several values, a bool
    becomes ``.TRUE.``/``.FALSE.`` and ``None`` is skipped.

    ASE's ``InputSection`` can only append keywords, not replace them, so overrides need this small writer.
    """
    pad = "  " * indent
    lines = []
    for key, value in tree.items():
        if key == "_" or value is None:
            continue
        sections = value if isinstance(value, list) and value and isinstance(value[0], Mapping) else [value]
        if isinstance(sections[0], Mapping):
            for section in sections:
                parameter = section.get("_")
                lines.append(f"{pad}&{key}" + ("" if parameter is None else f" {_format(parameter)}"))
                body = render_input(section, indent + 1)
                if body:
                    lines.append(body)
                lines.append(f"{pad}&END {key}")
        else:
            lines.append(f"{pad}{key} {_format(value)}")
    return "\n".join(lines)


def _format(value) -> str:
    if isinstance(value, bool):
        return ".TRUE." if value else ".FALSE."
    if isinstance(value, (list, tuple, np.ndarray)):
        return " ".join(_format(v) for v in value)
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def find_data_file(name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """Locate a CP2K data file the way CP2K does: as given, else in ``$CP2K_DATA_DIR`` or ``data_dir``."""
    path = Path(name)
    if path.is_file():
        return path.resolve()
    if path.is_absolute():
        return None
    for directory in (os.environ.get("CP2K_DATA_DIR"), data_dir):
        if directory and (Path(directory) / name).is_file():
            return Path(directory) / name
    return None


def names_in_library(path: Path, element: str) -> set[str]:
    """Upper-cased basis set or pseudopotential names a CP2K library file offers for ``element``.

    A header line starts with the element symbol followed by the names (aliases) of one entry.
    """
    names = set()
    for line in path.read_text(errors="replace").splitlines():
        parts = line.split("#", 1)[0].split()
        if len(parts) >= 2 and parts[0].lower() == element.lower():
            names.update(p.upper() for p in parts[1:])
    return names


def data_path(name: str, data_dir: str) -> str:
    """The data file CP2K is to read: the one :func:`find_data_file` finds (so that the setup check and
    CP2K agree on which file it is), else the name as given."""
    path = find_data_file(name, data_dir)
    return str(path) if path is not None else name


def input_tree(settings, atoms: Atoms, project: str, coord_file: str) -> dict:
    """The CP2K input for ``atoms`` under ``settings`` (a :class:`~.cp2k.CP2KLabeller`), overrides applied."""
    if not np.all(atoms.pbc):
        raise ValueError("CP2KLabeller needs a fully periodic cell (pbc=True in x, y and z)")
    s = settings
    xc = {"XC_FUNCTIONAL": {"_": s.xc}}
    if s.xc_smoothing:
        xc["XC_GRID"] = {"XC_SMOOTH_RHO": "NN10", "XC_DERIV": "SPLINE2_SMOOTH"}
    if s.vdw:
        if s.vdw.upper() != "RVV10":
            raise ValueError(f"vdw={s.vdw!r}: only 'rVV10' or None are supported")
        xc["VDW_POTENTIAL"] = {
            "POTENTIAL_TYPE": "NON_LOCAL",
            "NON_LOCAL": {
                "TYPE": "RVV10",
                "PARAMETERS": list(s.vdw_parameters),
                "KERNEL_FILE_NAME": data_path(s.vdw_kernel_file, s.data_dir),
                "CUTOFF": s.vdw_cutoff_Ry,
            },
        }
    kinds = [
        {"_": el, "BASIS_SET": s.basis_for(el), "POTENTIAL": s.pseudopotential_for(el)}
        for el in sorted(set(atoms.get_chemical_symbols()))
    ]
    tree = {
        "GLOBAL": {"PROJECT": project, "RUN_TYPE": "ENERGY_FORCE", "PRINT_LEVEL": "LOW"},
        "FORCE_EVAL": {
            "METHOD": "QUICKSTEP",
            "DFT": {
                "BASIS_SET_FILE_NAME": data_path(s.basis_set_file, s.data_dir),
                "POTENTIAL_FILE_NAME": data_path(s.potential_file, s.data_dir),
                "CHARGE": int(s.charge_e),
                "MULTIPLICITY": int(s.multiplicity),
                "UKS": True if s.multiplicity > 1 else None,
                "MGRID": {"CUTOFF": s.cutoff_Ry, "REL_CUTOFF": s.rel_cutoff_Ry},
                "SCF": {
                    "SCF_GUESS": "ATOMIC",
                    "EPS_SCF": s.eps_scf,
                    "MAX_SCF": s.max_scf,
                    "DIAGONALIZATION": {"_": "ON", "ALGORITHM": "STANDARD"},
                    "MIXING": {"_": "ON", "METHOD": "BROYDEN_MIXING", "ALPHA": s.mixing_alpha},
                },
                "XC": xc,
            },
            "SUBSYS": {
                "CELL": {
                    "A": list(atoms.cell[0]),
                    "B": list(atoms.cell[1]),
                    "C": list(atoms.cell[2]),
                    "PERIODIC": "XYZ",
                },
                "TOPOLOGY": {"COORD_FILE_NAME": coord_file, "COORD_FILE_FORMAT": "XYZ"},
                "KIND": kinds,
            },
            "PRINT": {"FORCES": {"_": "ON", "FILENAME": "forces"}},
        },
    }
    return merge_input(tree, s.overrides)
