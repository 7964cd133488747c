"""GFN-xTB labels through tblite's ASE calculator, periodic.

tblite (0.8.0) runs the SCC loop for at most ``max_iterations`` cycles; when the loop does not converge it
raises ``ase.calculators.calculator.CalculationFailed("SCF not converged in N cycles")`` (no warning, no
result), which becomes :class:`~confselect.labelling.base.LabelFailure`. The SCC table (cycle, energy
error, density error) goes through Python's ``print``, so it is captured from ``sys.stdout`` to count the
cycles.

Threads: tblite uses the system OpenMP runtime (libgomp), which reads ``OMP_NUM_THREADS`` once, when it is
loaded. What works:

* ``OMP_NUM_THREADS=N`` in the environment when the process starts (e.g. in the Snakemake rule), or set in
  ``os.environ`` before the first ``import tblite``;
* after loading, only ``omp_set_num_threads``; the labeller calls it through ctypes for its ``threads``
  and restores the previous value afterwards. It acts on the calling thread, i.e. the one that labels.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import time
from pathlib import Path

from ase import Atoms
from ase.calculators.calculator import CalculationFailed, InputError
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import atomic_numbers

from ..config import SCHEMA, section_defaults
from .base import LabelFailure, LabellerSetupError

METHODS = ("GFN1-xTB", "GFN2-xTB", "IPEA1-xTB")
#: ``labelling.xtb`` of the schema: the only home of the defaults.
DEFAULTS = section_defaults(SCHEMA, "labelling", "xtb")
#: GFN1-xTB, GFN2-xTB and IPEA1-xTB are parametrised for H to Rn.
MAX_ATOMIC_NUMBER = 86


def _openmp_runtime():
    """The libgomp that tblite's extension uses, or ``None`` if it cannot be found."""
    import tblite

    # threadpoolctl would do this too; it is not a dependency and these two C calls are all that is needed.
    bundled = sorted((Path(tblite.__file__).parent.parent / "tblite.libs").glob("libgomp*.so*"))
    for candidate in [*map(str, bundled), "libgomp.so.1"]:
        try:
            return ctypes.CDLL(candidate)
        except OSError:
            continue
    return None


@contextlib.contextmanager
def openmp_threads(threads: int):
    """Run the block with ``threads`` OpenMP threads in tblite's runtime; yields the count in effect."""
    runtime = _openmp_runtime()
    if runtime is None:
        yield None
        return
    previous = runtime.omp_get_max_threads()
    runtime.omp_set_num_threads(int(threads))
    try:
        yield runtime.omp_get_max_threads()
    finally:
        runtime.omp_set_num_threads(previous)


def scc_cycles(log: str) -> tuple[int, float | None]:
    """Number of SCC cycles and the last density error (e) in a tblite log.

    A cycle row reads ``cycle  total-energy  energy-error  density-error``.
    """
    cycles, density_error = 0, None
    for line in log.splitlines():
        tokens = line.split()
        if len(tokens) == 4 and tokens[0].isdigit():
            try:
                density_error = float(tokens[3])
            except ValueError:
                continue
            cycles += 1
    return cycles, density_error


class XTBLabeller:
    """Energy (eV) and forces (eV/A) from GFN-xTB (tblite) on the periodic cell.

    Parameters
    ----------
    method : "GFN1-xTB", "GFN2-xTB" or "IPEA1-xTB".
    accuracy : tblite's numerical accuracy factor (smaller is tighter, dimensionless).
    electronic_temperature_K : Fermi smearing temperature (K).
    max_iterations : SCC cycles before tblite gives up.
    threads : OpenMP threads while labelling (see the module docstring).
    """

    name = "xtb"

    def __init__(
        self,
        method: str = DEFAULTS["method"],
        accuracy: float = DEFAULTS["accuracy"],
        electronic_temperature_K: float = DEFAULTS["electronic_temperature_K"],
        max_iterations: int = DEFAULTS["max_iterations"],
        threads: int = 1,
    ):
        self.method = method
        self.accuracy = accuracy
        self.electronic_temperature_K = electronic_temperature_K
        self.max_iterations = max_iterations
        self.threads = threads

    def check_setup(self, symbols=()) -> None:
        """Raise :class:`LabellerSetupError` if tblite is missing, the method unknown or an element unsupported."""
        try:
            import tblite.ase  # noqa: F401
        except ImportError as err:
            raise LabellerSetupError(f"tblite is not importable ({err}): pip install tblite==0.8.0") from err
        if self.method not in METHODS:
            raise LabellerSetupError(f"unknown xTB method {self.method!r}: choose one of {', '.join(METHODS)}")
        unsupported = sorted({s for s in symbols if atomic_numbers.get(s, 999) > MAX_ATOMIC_NUMBER})
        if unsupported:
            raise LabellerSetupError(f"{self.method} has no parameters for {', '.join(unsupported)}")

    def label(self, atoms: Atoms, workdir=None) -> Atoms:
        """Labelled copy of ``atoms``; raises :class:`LabelFailure` if the SCC does not converge.

        ``workdir`` is accepted for a common labeller interface and not used: tblite writes no files.
        """
        from tblite.ase import TBLite

        calc = TBLite(
            method=self.method,
            accuracy=self.accuracy,
            electronic_temperature=self.electronic_temperature_K,
            max_iterations=self.max_iterations,
            verbosity=1,
        )
        work = atoms.copy()
        work.calc = calc
        log = io.StringIO()
        start = time.perf_counter()
        try:
            with openmp_threads(self.threads) as threads_used, contextlib.redirect_stdout(log):
                energy = work.get_potential_energy()
                forces = work.get_forces()
        except (CalculationFailed, InputError) as err:
            cycles, density_error = scc_cycles(log.getvalue())
            raise LabelFailure(
                f"{self.method} failed: {err}",
                scf_iterations=cycles,
                last_density_error=density_error,
                max_iterations=self.max_iterations,
                wall_time_s=time.perf_counter() - start,
            ) from err
        wall = time.perf_counter() - start
        cycles, _ = scc_cycles(log.getvalue())

        labelled = atoms.copy()
        labelled.calc = SinglePointCalculator(labelled, energy=energy, forces=forces)
        labelled.info.update(
            labeller=self.name,
            label_wall_time_s=wall,
            scf_iterations=cycles,
            scf_converged=True,
            xtb_method=self.method,
            omp_threads=threads_used,
        )
        return labelled
