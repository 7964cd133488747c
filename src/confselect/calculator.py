"""ASE calculators for trained SchNetPack models: :class:`SchNetCalculator` for MD, :func:`spk_calculator`.

:class:`SchNetCalculator` is what ML-MD runs on (driven by ASE's integrators, :mod:`confselect.dynamics`).
What it adds to SchNetPack's own ``SpkCalculator``:

* a Verlet neighbour list (:class:`confselect.neighbours.VerletNeighbourList`, vesin, 1 A skin) that
  persists across calls and is rebuilt only when an atom may have brought a new pair inside the cutoff
  (the test also covers the cell changes of NPT, and any other new structure);
* SchNet with tabulated continuous filters and the ZBL prior in closed form
  (:class:`confselect.schnet_evaluators.TabulatedSchNetEvaluator`), cross-checked at start-up against the
  model run as it is on the first structure; models it does not recognise, or a failed check, fall back to
  running the model as it is (:class:`~confselect.schnet_evaluators.DirectEvaluator`);
* energy, forces and stress from one autograd pass: an integrator asking for all three per step
  (``IsotropicMTKNPT``) pays one model evaluation.

Positions, cell and pair vectors are float64 on the model's device; the model runs in float32 as trained.
Units are ASE's: energy eV, forces eV/A, stress eV/A^3 (ASE sign, no kinetic part).  Next to the
implemented properties, ``results["min_distance_A"]`` holds the smallest pair distance (exact below the
cutoff, which is all the stability check needs).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

from .neighbours import VerletNeighbourList
from .schnet_evaluators import (
    DirectEvaluator,
    TabulatedSchNetEvaluator,
    load_model,
    model_cutoff_A,
    tabulation_unsupported,
)

BACKENDS = ("auto", "tabulated", "direct")


class SchNetCalculator(Calculator):
    """ASE calculator for a SchNetPack SchNet potential with a persistent Verlet list and tabulated filters.

    Parameters
    ----------
    model : str, Path or torch.nn.Module
        ``model.pt`` saved by :class:`confselect.training.SchNetTrainer` (energy eV, forces eV/A), or the
        module.  A private copy is used.
    cutoff_A : float, optional
        Neighbour cutoff, A.  Defaults to the model's cutoff; if given it must equal it.
    skin_A : float
        Verlet skin, A (0 rebuilds the list at every call).
    backend : "auto", "tabulated" or "direct"
        "auto" takes "tabulated" when the model is a plain SchNet potential and the start-up check passes,
        else "direct" (with a warning); "tabulated" raises instead of falling back.
    device : str
        torch device of the model and of every tensor (resolve a config value with
        :func:`confselect.devices.resolve_device` first).
    dtype : torch.dtype
        Precision of the model (float32 as trained; float64 for checks).  Positions are always float64.
    table_spacing_A : float
        Grid spacing of the filter tables, A.
    check_tolerance_eV_A : float
        Start-up check: the largest force difference between the tabulated and the direct evaluation of the
        first structure must stay below ``check_tolerance_eV_A + 1e-4 max|F|`` (eV/A) and the energy
        difference below ``1e-5 (N eV + |E|)``.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, model, cutoff_A: float | None = None, skin_A: float = 1.0, backend: str = "auto",
                 device: str = "cpu", dtype: torch.dtype = torch.float32, table_spacing_A: float = 0.005,
                 check_tolerance_eV_A: float = 1e-4, **kwargs):
        super().__init__(**kwargs)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.device = torch.device(device)
        self.dtype = dtype
        self.model = load_model(model, dtype, str(self.device))
        stated = model_cutoff_A(self.model)
        if cutoff_A is None:
            if stated is None:
                raise ValueError("the model states no cutoff: pass cutoff_A")
            cutoff_A = stated
        elif stated is not None and not math.isclose(float(cutoff_A), stated, rel_tol=1e-6):
            raise ValueError(f"cutoff_A = {cutoff_A} A differs from the model's cutoff {stated} A")
        self.cutoff_A = float(cutoff_A)
        self.skin_A = float(skin_A)
        self.requested_backend = backend
        self.table_spacing_A = table_spacing_A
        self.check_tolerance_eV_A = check_tolerance_eV_A
        self.neighbours: VerletNeighbourList | None = None
        self.evaluator = None
        self.backend_note = ""
        self._numbers = None
        self._periodic = None

    @property
    def backend(self) -> str:
        """The evaluator in use: "tabulated" or "direct" (None before the first calculation)."""
        return None if self.evaluator is None else self.evaluator.name

    # ------------------------------------------------------------------ set-up per system

    def _tensors(self, atoms):
        positions = torch.as_tensor(atoms.get_positions(), dtype=torch.float64, device=self.device)
        cell = torch.as_tensor(atoms.cell.array, dtype=torch.float64, device=self.device)
        if not (np.isfinite(atoms.positions).all() and np.isfinite(atoms.cell.array).all()):
            raise FloatingPointError("non-finite positions or cell")
        return positions, cell

    def _prepare(self, atoms) -> None:
        """Evaluators and neighbour list for the atoms' species and periodicity (kept while they stay)."""
        pbc = np.asarray(atoms.pbc, dtype=bool)
        if pbc.any() and not pbc.all():
            raise ValueError(f"mixed periodicity {atoms.pbc} is not supported (all or none)")
        numbers, periodic = atoms.get_atomic_numbers(), bool(pbc.all())
        if self._numbers is not None and periodic == self._periodic and np.array_equal(numbers, self._numbers):
            return
        if len(numbers) == 0:
            raise ValueError("atoms is empty")
        self._numbers, self._periodic = numbers.copy(), periodic
        self.neighbours = VerletNeighbourList(self.cutoff_A, self.skin_A, periodic)
        direct = DirectEvaluator(self.model, numbers, periodic, self.dtype)
        self.evaluator, self.backend_note = direct, ""
        if self.requested_backend == "direct":
            return
        reason = tabulation_unsupported(self.model)
        if not reason:
            tabulated = TabulatedSchNetEvaluator(self.model, numbers, self.table_spacing_A, self.dtype)
            reason = self._compare(tabulated, direct, *self._tensors(atoms))
            if not reason:
                self.evaluator = tabulated
        if reason:
            if self.requested_backend == "tabulated":
                raise ValueError(f"tabulated backend unavailable: {reason}")
            self.backend_note = reason
            warnings.warn(f"SchNetCalculator: using the direct backend ({reason})", stacklevel=3)

    def _compare(self, tabulated, direct, positions, cell) -> str:
        """"" if the tabulated evaluator reproduces the direct model on this configuration."""
        pairs = self.neighbours.pairs_within_cutoff(positions, cell)[:3]
        e_tab, f_tab, _ = tabulated(positions, cell, *pairs, need_virial=False)
        e_dir, f_dir, _ = direct(positions, cell, *pairs, need_virial=False)
        df = float((f_tab - f_dir).abs().max())
        limit = self.check_tolerance_eV_A + 1e-4 * float(f_dir.abs().max())
        if not (df <= limit):
            return f"tabulated forces differ from the model's by {df:.3g} eV/A (limit {limit:.3g})"
        de = abs(e_tab - e_dir)
        if not (de <= 1e-5 * (len(positions) + abs(e_dir))):
            return f"tabulated energy differs from the model's by {de:.3g} eV"
        return ""

    # ------------------------------------------------------------------ ASE interface

    def check_state(self, atoms, tol: float = 1e-15) -> list[str]:
        """The first change, among what the energy depends on, since the last calculation ([] if none).

        ASE's own check compares every array of the atoms with ``isclose``, at about five calls per MD step;
        the energy depends only on these four, exact equality is the right test for a cache, and the
        calculation redoes everything whatever changed, so the first difference found is enough."""
        old = self.atoms
        if old is None:
            return list(all_changes)
        for name, a, b in (("positions", old.positions, atoms.positions), ("cell", old.cell.array, atoms.cell.array),
                           ("numbers", old.numbers, atoms.numbers), ("pbc", old.pbc, atoms.pbc)):
            if a.shape != b.shape or not (a == b).all():
                return [name]
        return []

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        self._prepare(atoms)
        positions, cell = self._tensors(atoms)
        i, j, r_ij, min_distance = self.neighbours.pairs_within_cutoff(positions, cell)
        # the tabulated evaluator has the virial for free; the direct one needs SchNetPack's strain pass
        need_virial = self._periodic and (self.evaluator.name == "tabulated" or "stress" in properties)
        energy, forces, strain_derivative = self.evaluator(positions, cell, i, j, r_ij, need_virial)
        self.results = {
            "energy": energy,
            "free_energy": energy,  # no electronic entropy; ASE's NHC/MTK conserved energy asks for it
            "forces": forces.cpu().numpy(),
            "min_distance_A": min_distance,
        }
        if strain_derivative is not None:
            stress = strain_derivative.cpu().numpy() / atoms.get_volume()
            self.results["stress"] = stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]


def spk_calculator(model_path, cutoff_A: float, device: str = "cpu", stress: bool = False):
    """SchNetPack's own ASE calculator for a saved model, in eV and A (SchNetPack defaults to kcal/mol).

    It also reports ``free_energy`` (= energy: no electronic entropy), which ASE's Nose-Hoover chain
    integrators ask for when they compute their conserved energy; ``stress=True`` adds SchNetPack's strain
    response (it modifies the model it is given, so pass a path or a copy).  Used for the test-set errors and
    as the reference the tests and benchmark hold :class:`SchNetCalculator` against.
    """
    import schnetpack.transform as trn
    from schnetpack.interfaces import SpkCalculator

    class SpkCalculatorWithFreeEnergy(SpkCalculator):
        implemented_properties = [*SpkCalculator.implemented_properties, "free_energy"]

        def calculate(self, *args, **kwargs):
            super().calculate(*args, **kwargs)
            self.results["free_energy"] = self.results["energy"]

    return SpkCalculatorWithFreeEnergy(
        model=model_path if isinstance(model_path, torch.nn.Module) else str(model_path),
        neighbor_list=trn.MatScipyNeighborList(cutoff=cutoff_A),
        energy_unit="eV",
        position_unit="Ang",
        device=device,
        stress_key="stress" if stress else None,
    )
