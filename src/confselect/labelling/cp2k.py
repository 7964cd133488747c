"""DFT labels from CP2K with the settings of the RND paper (PBE + rVV10, MOLOPT basis, GTH pseudopotentials).

The labeller writes a CP2K input from its settings, runs ``cp2k.psmp -i <input> -o <output>`` as one process
with ``OMP_NUM_THREADS`` OpenMP threads (no MPI launcher) in a work directory, and reads back

* the total energy (``ENERGY| Total FORCE_EVAL`` line, Hartree -> eV),
* the forces (``&FORCE_EVAL/&PRINT/&FORCES`` file, Hartree/Bohr -> eV/A),
* the number of SCF steps and whether the SCF converged (CP2K 2023.1 prints
  ``*** SCF run converged in N steps ***`` or, when MAX_SCF is reached, ``Leaving inner SCF loop after
  reaching N steps`` followed by ``*** WARNING ... SCF run NOT converged ***`` and still writes energy and
  forces; those are never used as a label).

A non-converged SCF is retried once with the settings in ``retry`` (by default a smaller Broyden mixing
ALPHA and more SCF steps); if that fails too, :class:`~confselect.labelling.base.LabelFailure` carries the
iterations, the last SCF convergence value and the wall time of every attempt.

The CP2K input is held as a nested dict (section name -> dict, keyword -> value) so that any keyword can be
added, replaced or removed through ``overrides`` (a value of ``None`` removes a keyword or section).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.units import Bohr, Hartree

from .base import LabelFailure, LabellerSetupError

INSTALL_HINT = "apt-get install cp2k cp2k-data"

#: Where Debian's cp2k-data puts basis sets, pseudopotentials and the rVV10 kernel table.
DEFAULT_DATA_DIR = "/usr/share/cp2k"

#: Double-zeta MOLOPT basis sets of the short-range ("SR") family, the variant made for condensed phases.
DEFAULT_BASIS = {
    "Na": "DZVP-MOLOPT-SR-GTH-q9",
    "K": "DZVP-MOLOPT-SR-GTH-q9",
    "Cl": "DZVP-MOLOPT-SR-GTH-q7",
}

#: GTH pseudopotentials fitted for PBE; Na and K keep their semicore s and p shells (9 valence electrons).
DEFAULT_PSEUDOPOTENTIALS = {
    "Na": "GTH-PBE-q9",
    "K": "GTH-PBE-q9",
    "Cl": "GTH-PBE-q7",
}

#: Settings of the second attempt after a non-converged SCF (keys are CP2KLabeller fields).
DEFAULT_RETRY = {"mixing_alpha": 0.1, "max_scf": 300}


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


@dataclasses.dataclass(frozen=True)
class CP2KOutput:
    """What one CP2K run reported: energy (Hartree), SCF steps and convergence, and any abort message."""

    energy_hartree: float | None
    scf_iterations: int
    scf_converged: bool
    last_scf_error: float | None
    abort_message: str | None


_ENERGY = re.compile(r"ENERGY\|\s+Total FORCE_EVAL \( \w+ \) energy \[a\.u\.\]:\s+(-?\d+\.\d+)")


def parse_output(text: str) -> CP2KOutput:
    """Read energy, SCF step count, last SCF convergence value and convergence from a CP2K output.

    SCF steps are the numbered rows of the table that starts with ``Step  Update method ... Convergence``;
    a row ends with ``convergence  total-energy  change``. Rows of all SCF tables in the file are counted.
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
            last_error = float(tokens[-3])
    energies = _ENERGY.findall(text)
    converged = "SCF run converged" in text and "SCF run NOT converged" not in text
    return CP2KOutput(
        energy_hartree=float(energies[-1]) if energies else None,
        scf_iterations=steps,
        scf_converged=converged,
        last_scf_error=last_error,
        abort_message=_abort_message(text),
    )


def _abort_message(text: str) -> str | None:
    """The message inside CP2K's ``[ABORT]`` box, without the box and its drawing (first 12 columns)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if "[ABORT]" in line), None)
    if start is None:
        return None
    words = []
    for line in lines[start : start + 12]:
        if line.strip().startswith("*****"):
            break
        words += line.strip().strip("*")[12:].split()
    return " ".join(words)


def read_forces(path: Path, n_atoms: int) -> np.ndarray:
    """Forces (eV/A) from a CP2K ``&PRINT/&FORCES`` file, which lists them in Hartree/Bohr by atom index."""
    rows = []
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) == 6 and parts[0].isdigit() and parts[1].isdigit():
            rows.append((int(parts[0]), [float(x) for x in parts[3:]]))
    if len(rows) != n_atoms or [i for i, _ in rows] != list(range(1, n_atoms + 1)):
        raise ValueError(f"{path}: expected forces on atoms 1..{n_atoms}, found {len(rows)} rows")
    return np.array([f for _, f in rows]) * Hartree / Bohr


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


@dataclasses.dataclass(frozen=True)
class CP2KLabeller:
    """Energy and forces from a CP2K single point (Quickstep GPW, one process, OpenMP threads).

    Parameters
    ----------
    executable : CP2K binary, looked up on PATH.
    threads : OpenMP threads (``OMP_NUM_THREADS``) of the CP2K process.
    cutoff_Ry, rel_cutoff_Ry : plane-wave density cutoff and relative cutoff of the multigrid (Rydberg).
    xc : name of CP2K's ``&XC_FUNCTIONAL`` shortcut.
    xc_smoothing : smooth the density (XC_SMOOTH_RHO NN10) and its derivatives (XC_DERIV SPLINE2_SMOOTH)
        on the XC grid; removes most of the grid ("egg-box") error of the Na/K semicore states.
    vdw : ``"rVV10"`` for the non-local rVV10 correlation, or ``None``.
    vdw_parameters : rVV10 (b, C), dimensionless; CP2K's defaults.
    vdw_cutoff_Ry : plane-wave cutoff (Rydberg) of the grid on which rVV10 is evaluated; ``None``: CP2K's
        default, the density grid (coarser grids gave wrong Na forces, see docs/labellers.md).
    vdw_kernel_file : rVV10 kernel table (cp2k-data ships ``rVV10_kernel_table.dat``).
    basis_set_file, potential_file : CP2K library files, bare names are looked up in ``data_dir``.
    basis, pseudopotentials : element -> name; merged over :data:`DEFAULT_BASIS` and
        :data:`DEFAULT_PSEUDOPOTENTIALS`.
    eps_scf : SCF convergence threshold (CP2K's EPS_SCF, largest density-matrix change).
    max_scf : SCF steps before CP2K gives up.
    mixing_alpha : Broyden mixing parameter.
    retry : field -> value for a second attempt after a non-converged SCF; ``None`` or ``{}``: no retry.
    overrides : nested dict merged over the generated input (see :func:`merge_input`).
    timeout_s : wall-time limit of one CP2K run (s); ``None``: no limit.
    data_dir : where bare library file names are found if ``$CP2K_DATA_DIR`` does not hold them.
    """

    name = "cp2k"

    executable: str = "cp2k.psmp"
    threads: int = 1
    cutoff_Ry: float = 600.0
    rel_cutoff_Ry: float = 60.0
    xc: str = "PBE"
    xc_smoothing: bool = True
    vdw: str | None = "rVV10"
    vdw_parameters: tuple[float, float] = (6.3, 0.0093)
    vdw_cutoff_Ry: float | None = None
    vdw_kernel_file: str = "rVV10_kernel_table.dat"
    basis_set_file: str = "BASIS_MOLOPT"
    potential_file: str = "GTH_POTENTIALS"
    basis: Mapping[str, str] | None = None
    pseudopotentials: Mapping[str, str] | None = None
    eps_scf: float = 1e-6
    max_scf: int = 100
    mixing_alpha: float = 0.4
    retry: Mapping | None = dataclasses.field(default_factory=lambda: dict(DEFAULT_RETRY))
    overrides: Mapping | None = None
    timeout_s: float | None = None
    data_dir: str = DEFAULT_DATA_DIR

    def __post_init__(self):
        fields = {f.name for f in dataclasses.fields(self)} - {"retry"}
        unknown = set(self.retry or {}) - fields
        if unknown:
            raise ValueError(f"retry settings {sorted(unknown)} are not CP2KLabeller settings")

    # ----------------------------------------------------------------------------------------- settings
    def basis_for(self, element: str) -> str:
        """Basis set name for ``element``."""
        names = {**DEFAULT_BASIS, **(self.basis or {})}
        if element not in names:
            raise LabellerSetupError(f"no basis set configured for {element}: pass basis={{'{element}': ...}}")
        return names[element]

    def pseudopotential_for(self, element: str) -> str:
        """Pseudopotential name for ``element``."""
        names = {**DEFAULT_PSEUDOPOTENTIALS, **(self.pseudopotentials or {})}
        if element not in names:
            raise LabellerSetupError(
                f"no pseudopotential configured for {element}: pass pseudopotentials={{'{element}': ...}}"
            )
        return names[element]

    def check_setup(self, symbols: Iterable[str] = ()) -> None:
        """Raise :class:`LabellerSetupError` if CP2K, a data file or a basis/potential entry is missing."""
        if shutil.which(self.executable) is None:
            raise LabellerSetupError(
                f"CP2K executable {self.executable!r} not found on PATH: install it ({INSTALL_HINT}) "
                "or set executable= to the cp2k.psmp binary"
            )
        files = {"basis_set_file": self.basis_set_file, "potential_file": self.potential_file}
        if self.vdw:
            files["vdw_kernel_file"] = self.vdw_kernel_file
        found = {}
        for setting, name in files.items():
            found[setting] = find_data_file(name, self.data_dir)
            if found[setting] is None:
                raise LabellerSetupError(
                    f"CP2K data file {name!r} not found (as given, in $CP2K_DATA_DIR or {self.data_dir}): "
                    f"install cp2k-data ({INSTALL_HINT}) or set {setting}="
                )
        for element in sorted(set(symbols)):
            for setting, name, path in (
                ("basis", self.basis_for(element), found["basis_set_file"]),
                ("pseudopotentials", self.pseudopotential_for(element), found["potential_file"]),
            ):
                if name.upper() not in names_in_library(path, element):
                    raise LabellerSetupError(
                        f"{path} has no entry {name!r} for {element}: set {setting}={{'{element}': ...}} "
                        "to a name that file holds, or point the file setting elsewhere"
                    )

    def _data_path(self, name: str) -> str:
        # CP2K runs in the work directory: pass the file check_setup found, so both agree on which file it is.
        path = find_data_file(name, self.data_dir)
        return str(path) if path is not None else name

    def input_tree(self, atoms: Atoms, project: str, coord_file: str) -> dict:
        """The CP2K input for ``atoms`` as a nested dict, overrides applied."""
        if not np.all(atoms.pbc):
            raise ValueError("CP2KLabeller needs a fully periodic cell (pbc=True in x, y and z)")
        xc = {"XC_FUNCTIONAL": {"_": self.xc}}
        if self.xc_smoothing:
            xc["XC_GRID"] = {"XC_SMOOTH_RHO": "NN10", "XC_DERIV": "SPLINE2_SMOOTH"}
        if self.vdw:
            if self.vdw.upper() != "RVV10":
                raise ValueError(f"vdw={self.vdw!r}: only 'rVV10' or None are supported")
            xc["VDW_POTENTIAL"] = {
                "POTENTIAL_TYPE": "NON_LOCAL",
                "NON_LOCAL": {
                    "TYPE": "RVV10",
                    "PARAMETERS": list(self.vdw_parameters),
                    "KERNEL_FILE_NAME": self._data_path(self.vdw_kernel_file),
                    "CUTOFF": self.vdw_cutoff_Ry,
                },
            }
        kinds = [
            {"_": el, "BASIS_SET": self.basis_for(el), "POTENTIAL": self.pseudopotential_for(el)}
            for el in sorted(set(atoms.get_chemical_symbols()))
        ]
        tree = {
            "GLOBAL": {"PROJECT": project, "RUN_TYPE": "ENERGY_FORCE", "PRINT_LEVEL": "LOW"},
            "FORCE_EVAL": {
                "METHOD": "QUICKSTEP",
                "DFT": {
                    "BASIS_SET_FILE_NAME": self._data_path(self.basis_set_file),
                    "POTENTIAL_FILE_NAME": self._data_path(self.potential_file),
                    "MGRID": {"CUTOFF": self.cutoff_Ry, "REL_CUTOFF": self.rel_cutoff_Ry},
                    "SCF": {
                        "SCF_GUESS": "ATOMIC",
                        "EPS_SCF": self.eps_scf,
                        "MAX_SCF": self.max_scf,
                        "DIAGONALIZATION": {"_": "ON", "ALGORITHM": "STANDARD"},
                        "MIXING": {"_": "ON", "METHOD": "BROYDEN_MIXING", "ALPHA": self.mixing_alpha},
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
        return merge_input(tree, self.overrides)

    # ----------------------------------------------------------------------------------------- running
    def run(self, atoms: Atoms, workdir: Path, project: str) -> tuple[CP2KOutput, float, Path]:
        """Write the input, run CP2K in ``workdir`` and parse its output.

        Returns the parsed output, the wall time (s) and the path of the forces file.
        """
        workdir.mkdir(parents=True, exist_ok=True)
        coord_file = f"{project}.xyz"
        ase.io.write(workdir / coord_file, atoms, format="xyz")
        (workdir / f"{project}.inp").write_text(render_input(self.input_tree(atoms, project, coord_file)) + "\n")
        env = {**os.environ, "OMP_NUM_THREADS": str(self.threads)}
        start = time.perf_counter()
        try:
            completed = subprocess.run(
                [self.executable, "-i", f"{project}.inp", "-o", f"{project}.out"],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
            )
        except subprocess.TimeoutExpired as err:
            raise LabelFailure(
                f"CP2K exceeded the time limit of {self.timeout_s} s",
                wall_time_s=time.perf_counter() - start,
                workdir=str(workdir),
            ) from err
        except FileNotFoundError as err:
            raise LabellerSetupError(f"cannot run {self.executable!r}: install it ({INSTALL_HINT})") from err
        wall = time.perf_counter() - start
        out_path = workdir / f"{project}.out"
        output = parse_output(out_path.read_text(errors="replace") if out_path.exists() else "")
        if completed.returncode != 0 or output.energy_hartree is None:
            raise LabelFailure(
                f"CP2K stopped without an energy (exit code {completed.returncode}): "
                + (output.abort_message or completed.stderr.strip()[-500:] or "no output"),
                returncode=completed.returncode,
                scf_iterations=output.scf_iterations,
                last_scf_error=output.last_scf_error,
                wall_time_s=wall,
                workdir=str(workdir),
            )
        return output, wall, workdir / f"{project}-forces-1_0.xyz"

    def label(self, atoms: Atoms, workdir: str | os.PathLike | None = None) -> Atoms:
        """Labelled copy of ``atoms`` (energy in eV, forces in eV/A); CP2K files stay in ``workdir``.

        Without ``workdir`` the run happens in a temporary directory that is removed afterwards.
        Raises :class:`LabelFailure` if the SCF does not converge on the first attempt nor on the retry.
        """
        if workdir is None:
            with tempfile.TemporaryDirectory(prefix="cp2k-") as tmp:
                return self.label(atoms, tmp)
        workdir = Path(workdir)
        attempts = []
        labeller, project = self, "label"
        while True:
            output, wall, forces_file = labeller.run(atoms, workdir, project)
            attempts.append(
                {
                    "scf_iterations": output.scf_iterations,
                    "last_scf_error": output.last_scf_error,
                    "wall_time_s": wall,
                    "max_scf": labeller.max_scf,
                    "mixing_alpha": labeller.mixing_alpha,
                }
            )
            if output.scf_converged:
                break
            if labeller is not self or not self.retry:
                raise LabelFailure(
                    f"CP2K SCF not converged after {len(attempts)} attempt(s): "
                    f"{output.scf_iterations} steps, last convergence {output.last_scf_error}",
                    scf_iterations=output.scf_iterations,
                    last_scf_error=output.last_scf_error,
                    wall_time_s=sum(a["wall_time_s"] for a in attempts),
                    attempts=attempts,
                    workdir=str(workdir),
                )
            labeller, project = dataclasses.replace(self, **self.retry, retry=None), "retry"

        labelled = atoms.copy()
        labelled.calc = SinglePointCalculator(
            labelled,
            energy=output.energy_hartree * Hartree,
            forces=read_forces(forces_file, len(atoms)),
        )
        labelled.info.update(
            labeller=self.name,
            label_wall_time_s=sum(a["wall_time_s"] for a in attempts),
            scf_iterations=output.scf_iterations,
            scf_converged=True,
            scf_retry=len(attempts) > 1,
            cp2k_cutoff_Ry=labeller.cutoff_Ry,
            cp2k_rel_cutoff_Ry=labeller.rel_cutoff_Ry,
        )
        return labelled


def cutoff_convergence(
    atoms: Atoms,
    cutoffs_Ry: Iterable[float],
    make_labeller: Callable[[float], CP2KLabeller],
    workdir: str | os.PathLike,
) -> list[dict]:
    """Label one frame at each plane-wave cutoff and compare with the highest cutoff.

    Returns one row per cutoff (ascending) with ``cutoff_Ry``, ``energy_diff_eV_per_atom`` (E - E_ref per
    atom), ``force_rms_diff_<X>_eV_per_A`` and ``force_max_diff_<X>_eV_per_A`` for every element X and for
    ``all`` atoms (RMS over Cartesian components, max over atoms of the norm of the force difference),
    ``net_force_eV_per_A`` (norm of the summed forces, zero for an exact calculation), ``scf_iterations``
    and ``wall_time_s``.
    """
    cutoffs = sorted(float(c) for c in cutoffs_Ry)
    labelled = {c: make_labeller(c).label(atoms, Path(workdir) / f"cutoff_{c:g}") for c in cutoffs}
    reference = labelled[cutoffs[-1]]
    symbols = np.array(atoms.get_chemical_symbols())
    groups = {el: symbols == el for el in sorted(set(symbols))} | {"all": np.ones(len(atoms), bool)}
    rows = []
    for c in cutoffs:
        frame = labelled[c]
        diff = frame.get_forces() - reference.get_forces()
        row = {
            "cutoff_Ry": c,
            "energy_diff_eV_per_atom": (frame.get_potential_energy() - reference.get_potential_energy())
            / len(atoms),
        }
        for group, mask in groups.items():
            row[f"force_rms_diff_{group}_eV_per_A"] = float(np.sqrt(np.mean(diff[mask] ** 2)))
            row[f"force_max_diff_{group}_eV_per_A"] = float(np.linalg.norm(diff[mask], axis=1).max())
        row["net_force_eV_per_A"] = float(np.linalg.norm(frame.get_forces().sum(axis=0)))
        row["scf_iterations"] = frame.info["scf_iterations"]
        row["wall_time_s"] = frame.info["label_wall_time_s"]
        rows.append(row)
    return rows
