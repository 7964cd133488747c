"""DFT labels from CP2K with the settings of the RND paper (PBE + rVV10, MOLOPT basis, GTH pseudopotentials).

The labeller writes a CP2K input from its settings (:mod:`.cp2k_input`), runs ``cp2k.psmp -i <input> -o
<output>`` in a work directory, directly or behind an MPI launcher (``ranks`` MPI ranks of ``threads``
OpenMP threads each; :mod:`.external`), and reads back (:mod:`.cp2k_output`, every release from 2023.1) the
total energy (Hartree -> eV), the forces of the ``&FORCE_EVAL/&PRINT/&FORCES`` file (Hartree/Bohr -> eV/A),
the SCF steps and whether the SCF converged.

A non-converged SCF is retried once with the solver settings in ``retry`` (by default a smaller Broyden
mixing ALPHA and more SCF steps); if that fails too, :class:`~confselect.labelling.base.LabelFailure`
carries the iterations, the last SCF convergence value and the wall time of every attempt. Every other way
a run can fail (no launcher, a timeout, a signal, an abort, a file that cannot be read) is a
``LabelFailure`` too, with the reason, whether it is ``transient``, and the tails of CP2K's output and
stderr.

Every setting and its default is in ``config/schema.yaml`` (``labelling.cp2k``); outside the workflow, build a
labeller with :func:`confselect.labelling.cp2k_settings.labeller_from_config`, which fills in those defaults.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.units import Hartree

from .base import LabelFailure, LabellerSetupError
from .cp2k_input import find_data_file, input_tree, merge_input, names_in_library, render_input
from .cp2k_output import CP2KOutput, CP2KParseError, parse_forces, parse_output, read_forces, tail
from .external import ProcessResult, check_launcher, launch_command, run_program, singleton_environment

INSTALL_HINT = "apt-get install cp2k cp2k-data"
#: Settings of the SCF solver: they decide whether and how fast the SCF converges, not what it converges to.
SOLVER_SETTINGS = ("max_scf", "mixing_alpha", "retry")
#: Abort messages about the machine (a file CP2K cannot open), not about the configuration.
_ENVIRONMENT_ABORT = re.compile(r"could not open|file .*not (found|exist)|no such file|cannot open", re.I)

__all__ = ["CP2KLabeller", "SOLVER_SETTINGS", "cutoff_convergence", "merge_input", "parse_output", "read_forces",
           "render_input"]


@dataclasses.dataclass(frozen=True)
class CP2KLabeller:
    """Energy and forces from a CP2K single point (Quickstep GPW).

    The fields are the settings of ``labelling.cp2k`` in ``config/schema.yaml``, where each is described
    and has its default. The workflow passes them complete (its schema validation fills in the defaults);
    elsewhere :func:`~.cp2k_settings.labeller_from_config` does the same. ``basis`` and ``pseudopotentials``
    map element -> name, ``retry`` maps solver settings (:data:`SOLVER_SETTINGS`) to their values on the
    second attempt.
    """

    name = "cp2k"

    executable: str
    launcher: str | None
    ranks: int
    threads: int
    timeout_s: float | None
    data_dir: str
    basis_set_file: str
    potential_file: str
    vdw_kernel_file: str
    cutoff_Ry: float
    rel_cutoff_Ry: float
    xc: str
    xc_smoothing: bool
    vdw: str | None
    vdw_parameters: tuple[float, float]
    vdw_cutoff_Ry: float | None
    basis: Mapping[str, str]
    pseudopotentials: Mapping[str, str]
    eps_scf: float
    charge_e: int
    multiplicity: int
    overrides: Mapping | None
    max_scf: int
    mixing_alpha: float
    retry: Mapping | None

    def __post_init__(self):
        unknown = set(self.retry or {}) - set(SOLVER_SETTINGS)
        if unknown:
            raise ValueError(f"retry settings {sorted(unknown)} are not solver settings {SOLVER_SETTINGS}")
        check_launcher(self.launcher)
        if self.ranks > 1 and not self.launcher:
            raise ValueError(f"ranks = {self.ranks} needs a launcher (e.g. 'mpirun -np {{ranks}}')")

    # ----------------------------------------------------------------------------------------- settings
    @property
    def cores(self) -> int:
        """Cores one calculation uses: MPI ranks x OpenMP threads per rank."""
        return self.ranks * self.threads

    def solver_settings(self) -> str:
        """The solver settings as canonical JSON: what a failure record is compared on before it is reused."""
        return json.dumps({key: getattr(self, key) for key in SOLVER_SETTINGS}, sort_keys=True)

    def basis_for(self, element: str) -> str:
        """Basis set name for ``element``."""
        if element not in self.basis:
            raise LabellerSetupError(f"no basis set configured for {element}: set basis: {{{element}: ...}}")
        return self.basis[element]

    def pseudopotential_for(self, element: str) -> str:
        """Pseudopotential name for ``element``."""
        if element not in self.pseudopotentials:
            raise LabellerSetupError(
                f"no pseudopotential configured for {element}: set pseudopotentials: {{{element}: ...}}"
            )
        return self.pseudopotentials[element]

    def check_setup(self, symbols: Iterable[str] = ()) -> None:
        """Raise :class:`LabellerSetupError` if CP2K, the launcher, a data file or a basis/potential entry is
        missing on this machine."""
        if shutil.which(self.executable) is None:
            raise LabellerSetupError(
                f"CP2K executable {self.executable!r} not found on PATH: install it ({INSTALL_HINT}) "
                "or set executable= to the cp2k.psmp binary"
            )
        if self.launcher:
            program = launch_command(self.launcher, self.ranks, self.threads, [])[0]
            if shutil.which(program) is None:
                raise LabellerSetupError(f"launcher program {program!r} (launcher {self.launcher!r}) not found on PATH")
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

    def input_tree(self, atoms: Atoms, project: str, coord_file: str) -> dict:
        """The CP2K input for ``atoms`` as a nested dict, overrides applied."""
        return input_tree(self, atoms, project, coord_file)

    # ----------------------------------------------------------------------------------------- running
    def command(self, project: str) -> list[str]:
        """The command line of one run: launcher (if any), executable, input and output."""
        return launch_command(self.launcher, self.ranks, self.threads,
                              [self.executable, "-i", f"{project}.inp", "-o", f"{project}.out"])

    def run(self, atoms: Atoms, workdir: Path, project: str) -> tuple[CP2KOutput, ProcessResult]:
        """Write the input, run CP2K in ``workdir`` and parse its output.

        Raises :class:`LabelFailure` for every way the run can end other than an SCF verdict with an
        energy (an SCF that did not converge is returned, for :meth:`label` to retry).
        """
        workdir.mkdir(parents=True, exist_ok=True)
        for stale in (f"{project}.out", f"{project}-forces-1_0.xyz", f"{project}.stdout", f"{project}.stderr"):
            (workdir / stale).unlink(missing_ok=True)  # CP2K appends to print files; never parse an old run
        coord_file = f"{project}.xyz"
        ase.io.write(workdir / coord_file, atoms, format="xyz")
        (workdir / f"{project}.inp").write_text(render_input(self.input_tree(atoms, project, coord_file)) + "\n")
        env = {**os.environ, "OMP_NUM_THREADS": str(self.threads)}
        if not self.launcher:  # one process of its own, also inside a Slurm job step
            env = singleton_environment(env)
        command = self.command(project)
        if self.launcher and shutil.which(self.executable) is None:
            result = ProcessResult(tuple(command), None, False, f"{self.executable}: not found on PATH", 0.0)
        else:
            result = run_program(command, workdir, env, self.timeout_s,
                                 workdir / f"{project}.stdout", workdir / f"{project}.stderr")
        fail = functools.partial(self._failure, workdir, project, result)
        if result.start_error:
            fail(f"cannot start CP2K ({result.start_error})", "launch", transient=True)
        if result.timed_out:
            fail(f"CP2K exceeded the time limit of {self.timeout_s} s and was stopped", "timeout", transient=True)
        out_path = workdir / f"{project}.out"
        try:
            output = parse_output(out_path.read_text(errors="replace") if out_path.exists() else "")
        except CP2KParseError as err:
            fail(f"CP2K output unreadable: {err}", "parse", transient=True)
        if output.scf_verdict == "not converged":
            return output, result
        if output.abort_message is not None:
            where = f" ({output.abort_location})" if output.abort_location else ""
            fail(f"CP2K aborted: {output.abort_message}{where}", "abort",
                 transient=bool(_ENVIRONMENT_ABORT.search(output.abort_message)), output=output)
        if result.signal is not None:
            fail(f"CP2K was killed by signal {result.signal}", "signal", transient=True, output=output)
        if result.returncode != 0:
            fail(f"CP2K exited with code {result.returncode} without an SCF verdict", "exit", transient=True,
                 output=output)
        if output.energy_hartree is None or not output.scf_converged:
            fail(f"CP2K ended without {'an energy' if output.scf_converged else 'an SCF verdict'}"
                 f"{'' if out_path.exists() else f' (no {out_path.name})'}", "no_energy", transient=True, output=output)
        return output, result

    def _failure(self, workdir: Path, project: str, result: ProcessResult, reason: str, kind: str,
                 transient: bool, output: CP2KOutput | None = None, **details):
        """Raise the :class:`LabelFailure` of a run, with the tails of its output and stderr."""
        record = {
            "kind": kind,
            "returncode": result.returncode if result.returncode is not None else "",
            "out_tail": tail(workdir / f"{project}.out"),
            "stderr_tail": tail(workdir / f"{project}.stderr"),
            "scf_iterations": output.scf_iterations if output else 0,
            "last_scf_error": output.last_scf_error if output and output.last_scf_error is not None else "",
            "cp2k_version": (output.version or "") if output else "",
            "wall_time_s": result.wall_time_s,
            "solver_settings": self.solver_settings(),
            "workdir": str(workdir),
        }
        stdout_tail = tail(workdir / f"{project}.stdout")
        if stdout_tail:
            record["stdout_tail"] = stdout_tail
        raise LabelFailure(reason, transient=transient, **{**record, **details})

    def forces(self, atoms: Atoms, workdir: Path, project: str, result: ProcessResult) -> np.ndarray:
        """Forces (eV/A) of a finished run: from the forces file, else from a ``FORCES|`` block in the output
        (an override that prints them there); :class:`LabelFailure` if neither can be read."""
        symbols = atoms.get_chemical_symbols()
        path, out_path = workdir / f"{project}-forces-1_0.xyz", workdir / f"{project}.out"
        try:
            if path.exists():
                return read_forces(path, symbols)
            forces = parse_forces(out_path.read_text(errors="replace"), symbols, source=out_path.name)
        except CP2KParseError as err:
            self._failure(workdir, project, result, f"CP2K forces unreadable: {err}", "parse", transient=True)
        if forces is None:
            self._failure(workdir, project, result, f"CP2K wrote no forces ({path.name} missing)", "no_forces",
                          transient=True)
        return forces

    def label(self, atoms: Atoms, workdir: str | os.PathLike | None = None) -> Atoms:
        """Labelled copy of ``atoms`` (energy in eV, forces in eV/A); CP2K files stay in ``workdir``.

        Without ``workdir`` the run happens in a temporary directory that is removed afterwards.
        Raises :class:`LabelFailure` if the SCF does not converge on the first attempt nor on the retry,
        and for every other failure of a run (:meth:`run`).
        """
        if workdir is None:
            with tempfile.TemporaryDirectory(prefix="cp2k-") as tmp:
                return self.label(atoms, tmp)
        workdir = Path(workdir)
        attempts = []
        labeller, project = self, "label"
        while True:
            try:
                output, result = labeller.run(atoms, workdir, project)
            except LabelFailure as err:  # on the retry: the record counts both attempts, under the settings given
                err.details.update(solver_settings=self.solver_settings(),
                                   wall_time_s=err.details["wall_time_s"] + sum(a["wall_time_s"] for a in attempts))
                raise
            attempts.append({"scf_iterations": output.scf_iterations, "last_scf_error": output.last_scf_error,
                             "wall_time_s": result.wall_time_s, "max_scf": labeller.max_scf,
                             "mixing_alpha": labeller.mixing_alpha})
            if output.scf_converged:
                break
            if labeller is not self or not self.retry:
                self._failure(
                    workdir, project, result,
                    f"CP2K SCF not converged after {len(attempts)} attempt(s): "
                    f"{output.scf_iterations} steps, last convergence {output.last_scf_error}",
                    "scf", transient=False, output=output, attempts=attempts,
                    wall_time_s=sum(a["wall_time_s"] for a in attempts),
                )
            labeller, project = dataclasses.replace(self, **self.retry, retry=None), "retry"

        labelled = atoms.copy()
        labelled.calc = SinglePointCalculator(
            labelled, energy=output.energy_hartree * Hartree, forces=labeller.forces(atoms, workdir, project, result)
        )
        labelled.info.update(
            labeller=self.name,
            label_wall_time_s=sum(a["wall_time_s"] for a in attempts),
            scf_iterations=output.scf_iterations,
            scf_converged=True,
            scf_retry=len(attempts) > 1,
            cp2k_cutoff_Ry=labeller.cutoff_Ry,
            cp2k_rel_cutoff_Ry=labeller.rel_cutoff_Ry,
            cp2k_version=output.version or "",
            cp2k_ranks=self.ranks,
            cp2k_threads=self.threads,
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
