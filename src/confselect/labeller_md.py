"""MD with the labeller itself: the reference a model trained on DFT (or xTB) labels should reproduce.

000 compares its models with 10 ps of DFT-MD at 400 atoms.  :class:`LabellerCalculator` puts any labeller
(:func:`confselect.labelling.make_labeller`) behind ASE's calculator interface, one single point per MD step,
so that the labeller's NVT run goes through the same integrator, state point, stability criteria and
observables as a model's (:func:`confselect.validation.ml_nvt`, :func:`~confselect.validation.judge_nvt`).
Each step is an independent labeller call (CP2K: a new process without wavefunction extrapolation), which
is the simplest and most expensive way to run DFT-MD: :func:`planned_labeller_md_cost` states its price from
a measured single point before anything is submitted, and the rule is off by default
(``validation.labeller_md.enabled``).
"""

from __future__ import annotations

import time
from pathlib import Path

from ase.calculators.calculator import Calculator, all_changes


class LabellerCalculator(Calculator):
    """Energy (eV) and forces (eV/A) of a labeller, one ``labeller.label(atoms, workdir)`` per call; the work
    directory of each call is ``workdir/step_<k>`` and removed after it.  A failed single point raises the
    labeller's :class:`~confselect.labelling.LabelFailure`, which ends the MD run (recorded, not raised, by
    :func:`confselect.dynamics.run_md`).  ``calls`` and ``wall_time_s`` count what it cost."""

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, labeller, workdir, **kwargs):
        super().__init__(**kwargs)
        self.labeller, self.workdir = labeller, Path(workdir)
        self.calls, self.wall_time_s = 0, 0.0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        import shutil

        super().calculate(atoms, properties, system_changes)
        step_dir = self.workdir / f"step_{self.calls}"
        tick = time.perf_counter()
        labelled = self.labeller.label(self.atoms.copy(), workdir=str(step_dir))
        self.wall_time_s += time.perf_counter() - tick
        self.calls += 1
        shutil.rmtree(step_dir, ignore_errors=True)
        energy = float(labelled.get_potential_energy())
        # no electronic entropy term is read from the labellers: the free energy ASE's thermostats ask for is
        # the energy
        self.results = {"energy": energy, "free_energy": energy, "forces": labelled.get_forces().copy()}


def planned_labeller_md_cost(core_hours_per_label: float, n_atoms_label: int, n_atoms_md: int, n_steps: int,
                             scaling_exponent: float = 3.0) -> dict:
    """Core-hours of the labeller's MD run before it is submitted: one single point per step (and one for
    the start), each the measured label's cost scaled by (n_atoms_md / n_atoms_label) ** ``scaling_exponent``.
    3 is the cubic cost of diagonalising Kohn-Sham DFT at a fixed cutoff, an upper bound for CP2K's GPW at a
    few hundred atoms, where the grids (linear in N) still take a large share."""
    per_step = core_hours_per_label * (n_atoms_md / n_atoms_label) ** scaling_exponent
    return {"n_steps": int(n_steps), "n_atoms": int(n_atoms_md), "scaling_exponent": scaling_exponent,
            "core_hours_per_step": per_step, "core_hours": per_step * (int(n_steps) + 1)}
