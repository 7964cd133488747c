"""Molecular dynamics with a trained SchNetPack potential, run in torch on the CPU (NVE, NVT, NPT).

:class:`MDEngine` takes a saved SchNetPack model (``model.pt`` as written by
:meth:`confselect.training.SchNetTrainer.fit`, or the ``nn.Module`` itself) and an :class:`ase.Atoms`
start, and integrates the equations of motion without going through ASE's calculator interface.
Units are ASE's throughout: positions A, energies eV, forces eV/A, time fs (ASE time internally),
temperature K, pressure bar, masses amu.

Where the time goes, and what the engine does about it
-----------------------------------------------------
Profiling ASE + ``SpkCalculator`` on molten NaCl (64-512 atoms, 5 A cutoff) shows that the model
evaluation is 80-90 % of a step; the neighbour list and ASE's bookkeeping are the rest.  The engine

* keeps a Verlet list: vesin finds the pairs within ``cutoff + skin`` and the list is reused until an
  atom may have brought a new pair inside the cutoff (the displacement test below, which also covers
  cell changes in NPT); pairs beyond the cutoff are dropped every step with one vectorised mask.  They
  would contribute exactly zero anyway (SchNet's cosine cutoff multiplies them by 0, value and slope),
  but evaluating them costs time, so we filter rather than rely on the cutoff function;
* evaluates SchNet with its continuous-filter networks *tabulated* ("tabulated" backend): a filter
  ``W(d) = filter_network(rbf(d)) * cutoff(d)`` depends only on the pair distance, so it is sampled once
  on a fine grid (default 0.005 A) together with its exact derivative (forward-mode autograd) and
  evaluated as a piecewise cubic Hermite polynomial.  The interpolant is C1, so forces stay the exact
  gradient of the energy that is integrated.  For the project's SchNet (untrained and trained) its
  largest error is about 1e-7 of the largest filter value, the float32 rounding of the stored
  coefficients (a finer grid does not lower it), against 4-5e-7 for the float32 network's own deviation
  from a float64 evaluation.  Everything else (embedding, interaction MLPs, atom-wise output,
  post-processing) is the model's own modules.
  The pairs are used as a half list, since W(d_ij) = W(d_ji);
* can also run the model as it is ("direct" backend): the engine then hands it exactly the inputs that
  SchNetPack's ``AtomsConverter`` and neighbour-list transform would (``_atomic_numbers``, ``_positions``,
  ``_cell``, ``_pbc``, ``_n_atoms``, ``_idx``, ``_idx_m``, ``_idx_i``, ``_idx_j``, ``_idx_i_local``,
  ``_idx_j_local``, ``_offsets``; full pair list).  This is the fallback for models the tabulated path does
  not recognise, and the reference the tabulated path is checked against when the engine starts.

Precision: the model runs in float32 (its training precision; float64 would only double the cost),
while positions, momenta, the cell and the thermostat/barostat variables are integrated in float64.
A step moves an atom by ~1e-2 A and changes the thermostat variables by small increments; in float32
these updates would be rounded at ~1e-6 A relative to positions of 10-30 A (more for unwrapped positions
in long diffusion runs), and the rounding would accumulate into a random walk of the conserved energy.
Pair vectors are formed in float64 from the float64 positions and only then cast for the network.

Integrators
-----------
Velocity Verlet (NVE); Nose-Hoover chain thermostat (NVT, Martyna-Klein-Tuckerman, as in
``ase.md.nose_hoover_chain.NoseHooverChainNVT``); isotropic Martyna-Tobias-Klein barostat with Nose-Hoover
chains on particles and on the volume (NPT, as ``ase.md.nose_hoover_chain.IsotropicMTKNPT``).  The
Trotter factorisation, the fourth-order Suzuki-Yoshida thermostat sub-steps, the thermostat and barostat
masses and the conserved quantities are the same as ASE's, so that with the same forces the trajectories
agree with ASE's step for step (the tests check this).  As in ASE, the thermostat and the reported
temperature count 3N degrees of freedom (the centre-of-mass momentum is not subtracted).  We write the loop ourselves rather than drive
ASE's classes because those evaluate forces through the ``Calculator`` interface (an ``Atoms`` round trip
and cache check per call, numpy <-> torch copies) and ask for the stress through a separate call; here
forces, energy and virial of one configuration come from one autograd pass and stay in torch.

The virial for NPT is the strain derivative of the energy, dE/d(epsilon) = sum over pairs of
r_ij (x) dE/dr_ij (tabulated backend: dE/dr_ij from autograd w.r.t. the pair distances), or SchNetPack's
own ``Strain`` response (direct backend, :func:`schnetpack.md.utils.activate_model_stress`).
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from ase import Atoms, units

#: Early-stop reasons (the same wording as :func:`confselect.mlmd.run_nvt`).
STOP_NONFINITE = "non-finite values"
STOP_FORCE = "force above threshold"
STOP_DISTANCE = "atoms too close"
STOP_CALLBACK = "stopped by callback"

#: Default thresholds, as :class:`confselect.observables.StabilityThresholds`.
DEFAULT_MAX_FORCE_EV_A = 10.0
DEFAULT_MIN_DISTANCE_A = 1.5

# Fourth-order Suzuki-Yoshida weights for the thermostat sub-steps (ase.md.nose_hoover_chain).
_SUZUKI_YOSHIDA_4 = (
    1.0 / (2.0 - 2.0 ** (1.0 / 3.0)),
    -(2.0 ** (1.0 / 3.0)) / (2.0 - 2.0 ** (1.0 / 3.0)),
    1.0 / (2.0 - 2.0 ** (1.0 / 3.0)),
)


# ----------------------------------------------------------------------------------------------------------
# Model loading
# ----------------------------------------------------------------------------------------------------------


def load_model(model, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    """A private, inference-ready copy of a SchNetPack model (a path to ``model.pt`` or an ``nn.Module``).

    The copy is cast to ``dtype`` (as ``SpkCalculator`` does) and put in eval mode, and its parameters stop
    requiring gradients: forces need gradients w.r.t. the inputs only, and autograd then records no
    weight branches.  The caller's model is left untouched.
    """
    if isinstance(model, (str, Path)):
        model = torch.load(str(model), map_location="cpu", weights_only=False)
    else:
        model = copy.deepcopy(model)
    model = model.to(dtype).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def model_cutoff_A(model) -> float | None:
    """The cutoff radius (A) of the model's representation, or None if it does not state one."""
    representation = getattr(model, "representation", None)
    cutoff = getattr(representation, "cutoff", None)
    if cutoff is None:
        cutoff = getattr(getattr(representation, "cutoff_fn", None), "cutoff", None)
    if cutoff is None:
        return None
    return float(torch.as_tensor(cutoff).reshape(-1)[0])


# ----------------------------------------------------------------------------------------------------------
# Verlet neighbour list
# ----------------------------------------------------------------------------------------------------------


class VerletNeighbourList:
    """Half list of pairs within ``cutoff_A + skin_A`` (vesin), reused while it provably still holds
    every pair within ``cutoff_A``.

    Pairs are stored as atom indices ``i``, ``j`` and integer cell shifts ``S`` such that
    ``r_ij = R[j] - R[i] + S @ cell`` for the (unwrapped) positions ``R`` the list is used with.

    Reuse test.  Write the current cell as ``cell = cell_ref @ F`` and map the positions back to the
    reference cell, ``U = R @ F^-1``.  A pair not in the list had ``d_ref > cutoff + skin``; now
    ``d >= s_min(F) * (d_ref - 2 max|U - R_ref|)`` with ``s_min`` the smallest singular value of ``F``.  The
    list therefore still holds every pair within the cutoff while
    ``s_min * (cutoff + skin - 2 max|U - R_ref|) > cutoff``; for a fixed cell this is the usual
    "no atom moved more than skin/2" rule, in NPT it also accounts for the compression of the cell.
    With ``skin_A = 0`` the list is rebuilt at every step.
    """

    def __init__(self, cutoff_A: float, skin_A: float, periodic: bool = True):
        import vesin

        if cutoff_A <= 0 or skin_A < 0:
            raise ValueError(f"need cutoff_A > 0 and skin_A >= 0, got {cutoff_A} A and {skin_A} A")
        self.cutoff_A = float(cutoff_A)
        self.skin_A = float(skin_A)
        self.periodic = bool(periodic)
        self._calculator = vesin.NeighborList(cutoff=self.cutoff_A + self.skin_A, full_list=False)
        self.builds = 0
        self.i = self.j = self.shifts = None
        self._positions_ref = self._cell_ref = None

    def build(self, positions: torch.Tensor, cell: torch.Tensor) -> None:
        """Find the pairs within cutoff + skin for float64 ``positions`` (N, 3) and ``cell`` (3, 3), A."""
        i, j, shifts = self._calculator.compute(
            points=positions.numpy(), box=cell.numpy(), periodic=self.periodic, quantities="ijS"
        )
        self.i = torch.from_numpy(i.astype(np.int64))
        self.j = torch.from_numpy(j.astype(np.int64))
        self.shifts = torch.from_numpy(shifts.astype(np.float64))
        self._positions_ref = positions.clone()
        self._cell_ref = cell.clone()
        self.builds += 1

    def still_valid(self, positions: torch.Tensor, cell: torch.Tensor) -> bool:
        """True if every pair within the cutoff is certainly in the list (see the class docstring)."""
        if self.i is None:
            return False
        if torch.equal(cell, self._cell_ref):
            s_min, mapped = 1.0, positions
        else:
            deformation = torch.linalg.solve(self._cell_ref, cell)
            s_min = float(torch.linalg.svdvals(deformation).min())
            mapped = positions @ torch.linalg.inv(deformation)
        largest = float((mapped - self._positions_ref).square().sum(dim=1).max().sqrt()) if len(mapped) else 0.0
        return s_min * (self.cutoff_A + self.skin_A - 2.0 * largest) > self.cutoff_A

    def update(self, positions: torch.Tensor, cell: torch.Tensor) -> bool:
        """Rebuild the list if needed; return True if it was rebuilt."""
        if self.still_valid(positions, cell):
            return False
        self.build(positions, cell)
        return True

    def pair_vectors(self, positions: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """r_ij = R[j] - R[i] + S @ cell for all listed pairs, A, float64 (P, 3)."""
        return positions.index_select(0, self.j) - positions.index_select(0, self.i) + self.shifts @ cell


# ----------------------------------------------------------------------------------------------------------
# Energy, forces and virial
# ----------------------------------------------------------------------------------------------------------


@dataclass
class Evaluation:
    """Energy (eV), forces (eV/A, float64 (N, 3)), strain derivative dE/d(epsilon) (eV, float64 (3, 3),
    or None if not computed) and the smallest listed pair distance (A; exact below the cutoff)."""

    energy: float
    forces: torch.Tensor
    strain_derivative: torch.Tensor | None
    min_distance: float


class DirectEvaluator:
    """Runs the SchNetPack model on the inputs its ``AtomsConverter`` + neighbour-list transform would give.

    Needs a full pair list (both i->j and j->i), as SchNetPack's neighbour lists give.  The virial comes
    from a second copy of the model with SchNetPack's ``Strain`` response activated
    (:func:`schnetpack.md.utils.activate_model_stress`), used only when asked for.
    """

    name = "direct"

    def __init__(self, model: torch.nn.Module, numbers: np.ndarray, periodic: bool, dtype: torch.dtype):
        self.model = model
        self.dtype = dtype
        self.periodic = periodic
        self._stress_model = None
        n = len(numbers)
        self._constant = {
            "_n_atoms": torch.tensor([n]),
            "_atomic_numbers": torch.from_numpy(np.asarray(numbers, dtype=np.int64)),
            "_pbc": torch.tensor([[periodic] * 3]),
            "_idx": torch.tensor([0]),
            "_idx_m": torch.zeros(n, dtype=torch.int64),
        }

    def _stressed(self):
        if self._stress_model is None:
            from schnetpack.md.utils import activate_model_stress

            self._stress_model = activate_model_stress(copy.deepcopy(self.model), "stress")
        return self._stress_model

    def __call__(self, positions, cell, i, j, r_ij, need_virial: bool):
        """Energy, forces and (if asked) dE/d(epsilon) for the half list (i, j, r_ij) within the cutoff."""
        # Give the model positions that stay near the cell (float32 resolution) and offsets consistent with
        # the float64 pair vectors: R_j - R_i + offset == r_ij.
        if self.periodic:
            wrap = torch.floor(torch.linalg.solve(cell.T, positions.T).T) @ cell
        else:
            wrap = torch.zeros_like(positions)
        local = positions - wrap
        offsets = r_ij - (local.index_select(0, j) - local.index_select(0, i))
        inputs = dict(self._constant)
        idx_i = torch.cat([i, j])
        idx_j = torch.cat([j, i])
        inputs.update(
            {
                "_positions": local.to(self.dtype),
                "_cell": cell.to(self.dtype).reshape(1, 3, 3),
                "_idx_i": idx_i,
                "_idx_j": idx_j,
                "_idx_i_local": idx_i,
                "_idx_j_local": idx_j,
                "_offsets": torch.cat([offsets, -offsets]).to(self.dtype),
            }
        )
        model = self._stressed() if need_virial else self.model
        out = model(inputs)
        energy = float(out["energy"].detach().reshape(-1)[0])
        forces = out["forces"].detach().to(torch.float64)
        strain_derivative = None
        if need_virial:
            volume = abs(float(torch.linalg.det(cell)))
            strain_derivative = out["stress"].detach().to(torch.float64).reshape(3, 3) * volume
        return energy, forces, strain_derivative


class _TabulatedFilters(torch.autograd.Function):
    """Filter values W_a(d) of all interactions from cubic Hermite tables, with dW/dt for the backward pass.

    Inputs: ``t`` (P,) position inside the grid interval (0..1, float, requires grad), ``k`` (P,) interval
    index, ``coeffs`` (4, A, K, F) polynomial coefficients c0..c3 in t.  Returns A tensors (P, F).
    """

    @staticmethod
    def forward(ctx, t, k, coeffs):
        t = t[:, None]
        values, slopes = [], []
        for a in range(coeffs.shape[1]):
            c0, c1, c2, c3 = (coeffs[m, a].index_select(0, k) for m in range(4))
            w = torch.addcmul(c2, c3, t)  # Horner: ((c3 t + c2) t + c1) t + c0
            w.mul_(t).add_(c1).mul_(t).add_(c0)
            dw = torch.addcmul(c2, c3, t, value=1.5)  # dW/dt = (2 (c2 + 1.5 c3 t)) t + c1
            dw.mul_(t).mul_(2.0).add_(c1)
            values.append(w)
            slopes.append(dw)
        ctx.save_for_backward(*slopes)
        return tuple(values)

    @staticmethod
    def backward(ctx, *grads):
        slopes = ctx.saved_tensors
        grad_t = None
        for g, dw in zip(grads, slopes):
            term = (g * dw).sum(dim=1)
            grad_t = term if grad_t is None else grad_t + term
        return grad_t, None, None


def tabulation_unsupported(model) -> str:
    """Why the tabulated evaluator cannot reproduce ``model`` ("" if it can)."""
    try:
        import schnetpack as spk
        import schnetpack.transform as trn
        from schnetpack.representation.schnet import SchNetInteraction
    except ImportError as err:  # pragma: no cover - schnetpack is a dependency of the project
        return f"schnetpack not importable: {err}"

    if type(model) is not spk.model.NeuralNetworkPotential:
        return f"model is a {type(model).__name__}, not a schnetpack NeuralNetworkPotential"
    if [type(m) for m in model.input_modules] != [spk.atomistic.PairwiseDistances]:
        return "input modules other than a single PairwiseDistances"
    rep = model.representation
    if type(rep) is not spk.representation.SchNet:
        return f"representation is {type(rep).__name__}, not SchNet"
    if len(rep.electronic_embeddings) > 0:
        return "SchNet with electronic embeddings"
    if not all(type(m) is SchNetInteraction for m in rep.interactions):
        return "interaction blocks other than SchNetInteraction"
    outputs = list(model.output_modules)
    types = [type(m) for m in outputs]
    with_zbl = [spk.atomistic.Atomwise, spk.atomistic.ZBLRepulsionEnergy, spk.atomistic.Aggregation,
                spk.atomistic.Forces]
    if types == with_zbl:
        atomwise, zbl, total, forces = outputs
        if sorted(total.keys) != sorted([atomwise.output_key, zbl.output_key]):
            return "Aggregation of other terms than the Atomwise energy and the ZBL repulsion"
        if zbl.cutoff_fn is not None and type(zbl.cutoff_fn) is not spk.nn.CosineCutoff:
            return f"ZBL repulsion with a {type(zbl.cutoff_fn).__name__} (only CosineCutoff is tabulated)"
        energy_key = total.output_key
    elif types == [spk.atomistic.Atomwise, spk.atomistic.Forces]:
        atomwise, forces = outputs
        energy_key = atomwise.output_key
    else:
        return "output modules other than [Atomwise, Forces] or [Atomwise, ZBLRepulsionEnergy, Aggregation, Forces]"
    if atomwise.aggregation_mode not in ("sum", "avg") or forces.energy_key != energy_key:
        return "Atomwise output not aggregated into the energy the Forces module differentiates"
    if forces.calc_stress or not forces.calc_forces:
        return "Forces module configured for other responses than forces"
    for pp in model.postprocessors:
        if isinstance(pp, (trn.CastTo64, trn.CastTo32)):
            continue
        if isinstance(pp, trn.AddOffsets) and pp._property == energy_key:
            continue
        return f"post-processor {type(pp).__name__} not supported"
    return ""


class TabulatedSchNetEvaluator:
    """SchNet energy, forces and virial with tabulated continuous filters (see the module docstring).

    Uses the half pair list: every unordered pair carries messages both ways with the same filter value.
    Forces and the virial come from one autograd pass w.r.t. the pair distances:
    dE/dr_ij = dE/dd_ij r_ij / d_ij, F_i = sum_j dE/dr_ij - sum_k dE/dr_ki, dE/d(epsilon) = sum r_ij (x) dE/dr_ij.
    """

    name = "tabulated"

    def __init__(self, model, numbers: np.ndarray, spacing_A: float = 0.005, dtype: torch.dtype = torch.float32):
        reason = tabulation_unsupported(model)
        if reason:
            raise ValueError(f"cannot tabulate this model: {reason}")
        rep = model.representation
        self.cutoff_A = model_cutoff_A(model)
        self.dtype = dtype
        self.n_intervals = max(1, int(math.ceil(self.cutoff_A / spacing_A)))
        self.spacing_A = self.cutoff_A / self.n_intervals
        self.coeffs = self._tables(rep).to(dtype).contiguous()
        numbers_t = torch.from_numpy(np.asarray(numbers, dtype=np.int64))
        with torch.no_grad():
            self.x0 = rep.embedding(numbers_t).to(dtype)  # atom types never change during a run
        self.blocks = [(block.in2f, block.f2out) for block in rep.interactions]
        atomwise = model.output_modules[0]
        self.outnet = atomwise.outnet
        self.average = atomwise.aggregation_mode == "avg"
        self.energy_key = model.output_modules[-1].energy_key
        self.zbl = _ZBLPairs(model.output_modules[1], numbers) if len(model.output_modules) == 4 else None
        self.postprocessors = list(model.postprocessors) if model.do_postprocessing else []
        self._post_inputs = {
            "_n_atoms": torch.tensor([len(numbers_t)]),
            "_idx_m": torch.zeros(len(numbers_t), dtype=torch.int64),
            "_atomic_numbers": numbers_t,
        }

    def _tables(self, rep) -> torch.Tensor:
        """Hermite coefficients (4, A, K, F) of W_a(d) = filter_a(rbf(d)) * cutoff(d) on the grid, float64."""
        from torch.func import jvp

        rep64 = copy.deepcopy(rep).double()
        h = self.spacing_A
        grid = torch.arange(self.n_intervals + 1, dtype=torch.float64) * h

        def filters(d):
            f = rep64.radial_basis(d)
            c = rep64.cutoff_fn(d)[:, None]
            return torch.stack([block.filter_network(f) * c for block in rep64.interactions])

        with torch.no_grad():
            values, slopes = jvp(filters, (grid,), (torch.ones_like(grid),))
        slopes = slopes * h  # derivative w.r.t. t = (d - d_k) / h
        y0, y1, m0, m1 = values[:, :-1], values[:, 1:], slopes[:, :-1], slopes[:, 1:]
        return torch.stack([y0, m0, 3.0 * (y1 - y0) - 2.0 * m0 - m1, 2.0 * (y0 - y1) + m0 + m1])

    def filter_values(self, d: torch.Tensor) -> list[torch.Tensor]:
        """W_a(d) for float64 distances d < cutoff (for checks); list over interactions of (P, F)."""
        s = d / self.spacing_A
        k = s.long().clamp_(0, self.n_intervals - 1)
        with torch.no_grad():
            return list(_TabulatedFilters.apply((s - k).to(self.dtype), k, self.coeffs))

    def __call__(self, positions, cell, i, j, r_ij, need_virial: bool):
        n = len(positions)
        d = torch.linalg.vector_norm(r_ij, dim=1)
        s = d / self.spacing_A
        k = s.long().clamp_(0, self.n_intervals - 1)
        t = (s - k).to(self.dtype).requires_grad_(True)  # grid position in float64, then cast
        with torch.enable_grad():
            filters = _TabulatedFilters.apply(t, k, self.coeffs)
            x = self.x0
            for (in2f, f2out), w in zip(self.blocks, filters):
                y = in2f(x)
                messages = torch.zeros_like(y)
                messages.index_add_(0, i, y.index_select(0, j) * w)
                messages.index_add_(0, j, y.index_select(0, i) * w)
                x = x + f2out(messages)
            energy = self.outnet(x).sum()
            if self.average:
                energy = energy / n
            (grad_t,) = torch.autograd.grad(energy, t, allow_unused=True)
        if grad_t is None:
            grad_t = torch.zeros_like(t)
        # dE/dr_ij = (dE/dt / h) r_ij / d_ij  (float64 from here on)
        pair_grad = (grad_t.detach().to(torch.float64) / (self.spacing_A * d))[:, None] * r_ij
        energy = energy.detach().reshape(1)
        if self.zbl is not None:
            zbl_energy, zbl_grad = self.zbl(i, j, r_ij)
            energy = energy.to(torch.float64) + zbl_energy
            pair_grad = pair_grad + zbl_grad
        forces = torch.zeros((n, 3), dtype=torch.float64)
        forces.index_add_(0, i, pair_grad)
        forces.index_add_(0, j, -pair_grad)
        strain_derivative = r_ij.T @ pair_grad
        post = dict(self._post_inputs)
        post[self.energy_key] = energy
        for pp in self.postprocessors:
            post = pp(post)
        return float(post[self.energy_key].reshape(-1)[0]), forces, strain_derivative



class _ZBLPairs:
    """SchNetPack's ``ZBLRepulsionEnergy`` (fixed parameters, cosine or no cutoff) as closed-form pair sums.

    Per unordered pair, V(d) = ke Z_i Z_j / d * phi(d) * f_c(d) with the screening
    phi(d) = sum_k c_k exp(-a_ij b_k d), a_ij = (Z_i^p + Z_j^p) * a_div, and the parameters passed through
    softplus (c_k also L1-normalised) exactly as the module's forward does; SchNetPack sums over the full
    list with a factor 1/2, which is the half-list sum here. The derivative is written out, so a step needs
    no second autograd pass (through the module it cost about a fifth of a 64-ion step). The tests check
    energy, forces and stress against SchNetPack's own evaluation.
    """

    def __init__(self, module, numbers):
        import torch.nn.functional as F

        with torch.no_grad():
            z = torch.as_tensor(np.asarray(numbers), dtype=torch.float64)
            self.z = z
            self.a = z ** F.softplus(module.a_pow.detach().double())
            self.a_div = F.softplus(module.a_div.detach().double())
            self.b = F.softplus(module.exponents.detach().double())
            c = F.softplus(module.coefficients.detach().double())
            self.c = c / c.abs().sum().clamp_min(1e-12)
            self.ke = float(module.ke)
        self.cutoff_A = None if module.cutoff_fn is None else float(module.cutoff_fn.cutoff)

    def __call__(self, i, j, r_ij):
        """ZBL energy (eV, shape (1,)) and its gradient w.r.t. the half-list pair vectors (eV/A, (P, 3))."""
        d = torch.linalg.vector_norm(r_ij, dim=1)
        x = ((self.a.index_select(0, i) + self.a.index_select(0, j)) * self.a_div)[:, None] * self.b[None, :]
        terms = self.c[None, :] * torch.exp(-x * d[:, None])
        phi, dphi = terms.sum(dim=1), -(terms * x).sum(dim=1)
        q = self.ke * self.z.index_select(0, i) * self.z.index_select(0, j)
        if self.cutoff_A is None:
            fc, dfc = torch.ones_like(d), torch.zeros_like(d)
        else:  # schnetpack.nn.CosineCutoff: 0.5 (cos(pi d / rc) + 1) below rc, 0 beyond
            inside = (d < self.cutoff_A).to(d.dtype)
            w = math.pi / self.cutoff_A
            fc = 0.5 * (torch.cos(w * d) + 1.0) * inside
            dfc = -0.5 * w * torch.sin(w * d) * inside
        value = q * phi * fc / d
        slope = q * ((dphi * fc + phi * dfc) / d - phi * fc / d.square())
        return value.sum().reshape(1), (slope / d)[:, None] * r_ij


# ----------------------------------------------------------------------------------------------------------
# Thermostat and barostat chains
# ----------------------------------------------------------------------------------------------------------


class _NoseHooverChain:
    """A Nose-Hoover chain acting on one kinetic term (particle momenta or the barostat momentum).

    Mirrors ``NoseHooverChainThermostat`` / ``IsotropicMTKBarostat`` of ``ase.md.nose_hoover_chain``:
    ``masses`` are Q_0..Q_{M-1} (eV fs_ase^2), the first link is driven by G_0 = 2K - n_dof kT, the others
    by G_j = p_{j-1}^2 / Q_{j-1} - kT; half steps use ``loops`` x 4th-order Suzuki-Yoshida sub-steps.
    The chain variables are Python floats: they are a handful of scalars, and torch would add overhead.
    """

    def __init__(self, masses, n_dof: float, kT: float, loops: int = 1):
        self.Q = [float(q) for q in masses]
        self.n_dof = float(n_dof)
        self.kT = float(kT)
        self.loops = int(loops)
        self.eta = [0.0] * len(self.Q)
        self.p_eta = [0.0] * len(self.Q)

    def energy(self) -> float:
        """n_dof kT eta_0 + kT sum_{j>0} eta_j + sum p_j^2 / (2 Q_j), eV."""
        return (
            self.n_dof * self.kT * self.eta[0]
            + self.kT * sum(self.eta[1:])
            + sum(0.5 * p * p / q for p, q in zip(self.p_eta, self.Q))
        )

    def _p_eta_j(self, j: int, two_k: float, delta2: float, delta4: float) -> None:
        Q, p = self.Q, self.p_eta
        last = j == len(Q) - 1
        if not last:
            p[j] *= math.exp(-delta4 * p[j + 1] / Q[j + 1])
        g = two_k - self.n_dof * self.kT if j == 0 else p[j - 1] ** 2 / Q[j - 1] - self.kT
        p[j] += delta2 * g
        if not last:
            p[j] *= math.exp(-delta4 * p[j + 1] / Q[j + 1])

    def half_step(self, two_k: float, delta: float) -> float:
        """Propagate the chain by ``delta`` (ASE time) for kinetic term 2K; return the momentum scale factor."""
        scale = 1.0
        m = len(self.Q)
        for _ in range(self.loops):
            for weight in _SUZUKI_YOSHIDA_4:
                dt = weight * delta / self.loops
                for j in reversed(range(m)):
                    self._p_eta_j(j, two_k * scale * scale, dt / 2, dt / 4)
                for j in range(m):
                    self.eta[j] += dt * self.p_eta[j] / self.Q[j]
                scale *= math.exp(-dt * self.p_eta[0] / self.Q[0])
                for j in range(m):
                    self._p_eta_j(j, two_k * scale * scale, dt / 2, dt / 4)
        return scale


def _exprel(x: float) -> float:
    """(exp(x) - 1) / x, accurate near 0."""
    return math.expm1(x) / x if x != 0.0 else 1.0


# ----------------------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------------------

SERIES_KEYS = (
    "step",
    "time_fs",
    "temperature_K",
    "potential_eV",
    "kinetic_eV",
    "conserved_eV",
    "max_force_eV_A",
    "min_distance_A",
    "volume_A3",
    "pressure_bar",
)


@dataclass
class MDResult:
    """Outcome of :meth:`MDEngine.run`.

    frames              sampled ``ase.Atoms`` (unwrapped positions A, cell A, velocities, a single-point
                        calculator with energy eV / forces eV/A / stress eV/A^3, info ``time_fs``, ``step``)
    series              per-sample arrays, keys :data:`SERIES_KEYS`: step, time_fs, temperature_K (2K/(3N kB),
                        as ASE), potential_eV, kinetic_eV, conserved_eV (the integrator's conserved quantity),
                        max_force_eV_A, min_distance_A, volume_A3, pressure_bar (virial + kinetic; NaN if the
                        virial was not computed)
    stop_reason         "" if all steps ran, else why the run ended early (it never raises for that)
    steps               steps completed
    wall_time_s         wall time of the loop, s
    cpu_time_s          CPU time of the process during the loop, s
    neighbour_list_builds  vesin calls during the run
    """

    frames: list
    series: dict
    stop_reason: str
    steps: int
    wall_time_s: float
    cpu_time_s: float
    neighbour_list_builds: int
    ensemble: str = ""
    timestep_fs: float = 0.0

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.wall_time_s if self.wall_time_s > 0 else float("nan")


# ----------------------------------------------------------------------------------------------------------
# The engine
# ----------------------------------------------------------------------------------------------------------


class MDEngine:
    """Molecular dynamics of ``atoms`` with a SchNetPack model, in torch.

    Parameters
    ----------
    model : str, Path or torch.nn.Module
        ``model.pt`` saved by :class:`confselect.training.SchNetTrainer` (energy eV, forces eV/A), or the module.
        A private copy is used.
    atoms : ase.Atoms
        Start: positions (A), cell (A), pbc (all True or all False), masses (amu) and momenta (if any).
    cutoff_A : float, optional
        Neighbour cutoff, A.  Defaults to the model's cutoff; if given it must equal it.
    skin_A : float
        Verlet skin, A (0 rebuilds the list every step).
    dtype : torch.dtype
        Precision of the model evaluation (float32 as trained; float64 for checks).  Integration is float64.
    backend : "auto", "tabulated" or "direct"
        "tabulated" (SchNet with tabulated filters; see the module docstring) or "direct" (the model as it is).
        "auto" takes "tabulated" when the model is a plain SchNet potential and the check below passes.
    table_spacing_A : float
        Grid spacing of the filter tables, A.
    check_tolerance_eV_A : float
        At start-up the tabulated backend is compared with the direct model on ``atoms``; the largest force
        difference must stay below ``check_tolerance_eV_A + 1e-4 * max|F|`` (eV/A), and the energy difference
        below ``1e-5 (N eV + |E|)``.  Otherwise "auto" falls back to "direct" (with a warning) and "tabulated" raises.
    """

    def __init__(
        self,
        model,
        atoms: Atoms,
        cutoff_A: float | None = None,
        skin_A: float = 1.0,
        dtype: torch.dtype = torch.float32,
        backend: str = "auto",
        table_spacing_A: float = 0.005,
        check_tolerance_eV_A: float = 1e-4,
    ):
        if backend not in ("auto", "tabulated", "direct"):
            raise ValueError(f"backend must be 'auto', 'tabulated' or 'direct', got {backend!r}")
        self.model = load_model(model, dtype)
        self.dtype = dtype
        stated = model_cutoff_A(self.model)
        if cutoff_A is None:
            if stated is None:
                raise ValueError("the model states no cutoff: pass cutoff_A")
            cutoff_A = stated
        elif stated is not None and not math.isclose(float(cutoff_A), stated, rel_tol=1e-6):
            raise ValueError(f"cutoff_A = {cutoff_A} A differs from the model's cutoff {stated} A")
        self.cutoff_A = float(cutoff_A)

        pbc = np.asarray(atoms.pbc, dtype=bool)
        if pbc.any() and not pbc.all():
            raise ValueError(f"mixed periodicity {atoms.pbc} is not supported (all or none)")
        self.periodic = bool(pbc.all())
        self.numbers = atoms.get_atomic_numbers().copy()
        self.n_atoms = len(atoms)
        if self.n_atoms == 0:
            raise ValueError("atoms is empty")
        self.masses = torch.from_numpy(atoms.get_masses().astype(np.float64))[:, None]
        self.positions = torch.from_numpy(atoms.get_positions().astype(np.float64))
        self.momenta = torch.from_numpy(atoms.get_momenta().astype(np.float64))
        self.cell = torch.from_numpy(atoms.cell.array.astype(np.float64))
        self.neighbours = VerletNeighbourList(self.cutoff_A, skin_A, self.periodic)

        direct = DirectEvaluator(self.model, self.numbers, self.periodic, dtype)
        self.evaluator = direct
        self.backend_note = ""
        if backend in ("auto", "tabulated"):
            reason = tabulation_unsupported(self.model)
            if not reason:
                tabulated = TabulatedSchNetEvaluator(self.model, self.numbers, table_spacing_A, dtype)
                reason = self._compare(tabulated, direct, check_tolerance_eV_A)
                if not reason:
                    self.evaluator = tabulated
            if reason:
                if backend == "tabulated":
                    raise ValueError(f"tabulated backend unavailable: {reason}")
                self.backend_note = reason
                warnings.warn(f"MDEngine: using the direct backend ({reason})", stacklevel=2)
        self._state = self._evaluate(self.positions, self.cell, need_virial=False)

    # ------------------------------------------------------------------ evaluation

    @property
    def backend(self) -> str:
        """The backend in use: "tabulated" or "direct"."""
        return self.evaluator.name

    def _pairs(self, positions, cell):
        self.neighbours.update(positions, cell)
        r_ij = self.neighbours.pair_vectors(positions, cell)
        d2 = r_ij.square().sum(dim=1)
        min_distance = float(d2.min().sqrt()) if len(d2) else float("inf")
        keep = torch.nonzero(d2 < self.cutoff_A**2).squeeze(1)
        i = self.neighbours.i.index_select(0, keep)
        j = self.neighbours.j.index_select(0, keep)
        return i, j, r_ij.index_select(0, keep), min_distance

    def _evaluate(self, positions, cell, need_virial: bool, evaluator=None) -> Evaluation:
        i, j, r_ij, min_distance = self._pairs(positions, cell)
        energy, forces, strain_derivative = (evaluator or self.evaluator)(positions, cell, i, j, r_ij, need_virial)
        return Evaluation(energy, forces, strain_derivative, min_distance)

    def _compare(self, tabulated, direct, tolerance_eV_A: float) -> str:
        """"" if the tabulated evaluator reproduces the direct model on the current configuration."""
        a = self._evaluate(self.positions, self.cell, True, evaluator=tabulated)
        b = self._evaluate(self.positions, self.cell, False, evaluator=direct)
        df = float((a.forces - b.forces).abs().max())
        limit = tolerance_eV_A + 1e-4 * float(b.forces.abs().max())
        if not (df <= limit):
            return f"tabulated forces differ from the model's by {df:.3g} eV/A (limit {limit:.3g})"
        de = abs(a.energy - b.energy)
        if not (de <= 1e-5 * (self.n_atoms + abs(b.energy))):
            return f"tabulated energy differs from the model's by {de:.3g} eV"
        return ""

    def evaluate(self, atoms: Atoms | None = None) -> dict:
        """Energy (eV), forces (eV/A), stress (eV/A^3, ASE sign: (1/V) dE/d(epsilon), no kinetic part) and the
        virial pressure (bar) of ``atoms`` (same atoms, same order) or of the engine's current state."""
        if atoms is None:
            positions, cell = self.positions, self.cell
        else:
            if not np.array_equal(atoms.get_atomic_numbers(), self.numbers):
                raise ValueError("atoms must hold the engine's atoms in the same order")
            positions = torch.from_numpy(atoms.get_positions().astype(np.float64))
            cell = torch.from_numpy(atoms.cell.array.astype(np.float64))
        saved = self.neighbours
        self.neighbours = VerletNeighbourList(self.cutoff_A, 0.0, self.periodic)
        try:
            result = self._evaluate(positions, cell, need_virial=True)
        finally:
            self.neighbours = saved
        out = {"energy_eV": result.energy, "forces_eV_A": result.forces.numpy().copy(),
               "min_distance_A": result.min_distance}
        if self.periodic:
            volume = abs(float(torch.linalg.det(cell)))
            stress = result.strain_derivative.numpy() / volume
            out["stress_eV_A3"] = stress
            out["virial_pressure_bar"] = float(-np.trace(stress) / 3.0 / units.bar)
        return out

    # ------------------------------------------------------------------ state

    def set_state(self, atoms: Atoms) -> None:
        """Take positions (A), cell (A) and momenta from ``atoms`` (the engine's atoms, in the same order)."""
        if not np.array_equal(atoms.get_atomic_numbers(), self.numbers):
            raise ValueError("atoms must hold the engine's atoms in the same order")
        self.positions = torch.from_numpy(atoms.get_positions().astype(np.float64))
        self.cell = torch.from_numpy(atoms.cell.array.astype(np.float64))
        self.momenta = torch.from_numpy(atoms.get_momenta().astype(np.float64))
        self._state = self._evaluate(self.positions, self.cell, need_virial=False)

    def kinetic_energy(self) -> float:
        """Kinetic energy, eV."""
        return float(0.5 * (self.momenta.square() / self.masses).sum())

    def temperature(self) -> float:
        """Instantaneous temperature 2K / (3 N kB), K (ASE's convention)."""
        return 2.0 * self.kinetic_energy() / (3 * self.n_atoms * units.kB)

    def set_velocities(self, temperature_K: float, seed: int) -> None:
        """Maxwell-Boltzmann velocities at ``temperature_K`` (ASE's generator), zero total momentum."""
        from ase.md.velocitydistribution import Stationary, thermalize_momenta

        tmp = self.to_atoms()
        thermalize_momenta(tmp, temperature_K, rng=np.random.default_rng(seed))
        Stationary(tmp)
        self.momenta = torch.from_numpy(tmp.get_momenta().astype(np.float64))

    def to_atoms(self, with_results: bool = False) -> Atoms:
        """The current state as ``ase.Atoms`` (unwrapped positions, cell, momenta; optionally energy/forces)."""
        atoms = Atoms(
            numbers=self.numbers,
            positions=self.positions.numpy().copy(),
            cell=self.cell.numpy().copy(),
            pbc=self.periodic,
            masses=self.masses[:, 0].numpy().copy(),
        )
        atoms.set_momenta(self.momenta.numpy().copy(), apply_constraint=False)
        if with_results:
            from ase.calculators.singlepoint import SinglePointCalculator

            results = {"energy": self._state.energy, "forces": self._state.forces.numpy().copy()}
            if self._state.strain_derivative is not None and self.periodic:
                stress = self._state.strain_derivative.numpy() / self.volume()
                results["stress"] = stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
            atoms.calc = SinglePointCalculator(atoms, **results)
        return atoms

    def volume(self) -> float:
        """Cell volume, A^3 (0 for a non-periodic system)."""
        return abs(float(torch.linalg.det(self.cell))) if self.periodic else 0.0

    def pressure_bar(self) -> float:
        """Instantaneous pressure (virial + kinetic), bar; NaN if the virial of the current state is unknown."""
        if self._state.strain_derivative is None or not self.periodic:
            return float("nan")
        two_k = 2.0 * self.kinetic_energy()
        return (two_k - float(torch.trace(self._state.strain_derivative))) / (3.0 * self.volume()) / units.bar

    # ------------------------------------------------------------------ integration

    def _move(self, positions, cell, need_virial: bool) -> None:
        if not bool(torch.isfinite(positions).all()) or not bool(torch.isfinite(cell).all()):
            raise FloatingPointError("non-finite positions or cell")
        self.positions, self.cell = positions, cell
        self._state = self._evaluate(positions, cell, need_virial)

    def run(
        self,
        ensemble: str = "nvt",
        steps: int = 1000,
        timestep_fs: float = 2.0,
        temperature_K: float | None = None,
        thermostat_damping_fs: float = 100.0,
        pressure_bar: float = 1.0,
        barostat_damping_fs: float = 1000.0,
        sample_every: int = 10,
        callback: Callable | None = None,
        seed: int | None = None,
        max_force_eV_A: float = DEFAULT_MAX_FORCE_EV_A,
        min_distance_A: float = DEFAULT_MIN_DISTANCE_A,
        chain_length: int = 3,
        chain_loops: int = 1,
        pressure_every_sample: bool = True,
        progress_label: str | None = None,
    ) -> MDResult:
        """Integrate ``steps`` steps of ``timestep_fs`` fs and return the sampled frames and series.

        ensemble               "nve" (velocity Verlet), "nvt" (Nose-Hoover chain) or "npt" (isotropic MTK)
        temperature_K          target temperature, K (NVT, NPT); with ``seed`` also the temperature of the
                               initial Maxwell-Boltzmann velocities (any ensemble)
        thermostat_damping_fs  Nose-Hoover chain time constant, fs (000 uses 100 fs)
        pressure_bar           target pressure (NPT), bar
        barostat_damping_fs    barostat time constant (NPT), fs
        sample_every           record a sample every this many steps (and at step 0)
        callback               ``callback(atoms, sample) -> bool | str | None`` at every sample; a truthy
                               value stops the run (a string becomes the stop reason)
        seed                   draw new velocities (see ``temperature_K``); None continues with the current ones
        max_force_eV_A, min_distance_A
                               checked at every step: the run stops (without raising) at the first step with
                               non-finite values, a force above the first, or a pair closer than the second;
                               that step is sampled
        chain_length, chain_loops
                               Nose-Hoover chain length and Suzuki-Yoshida loops (thermostat and barostat)
        pressure_every_sample  NVE/NVT with the direct backend: compute the virial at samples (one extra
                               model call per sample); the tabulated backend always has it

        Thermostat and barostat variables start from zero at every call, as with a new ASE integrator.
        """
        ensemble = ensemble.lower()
        if ensemble not in ("nve", "nvt", "npt"):
            raise ValueError(f"ensemble must be 'nve', 'nvt' or 'npt', got {ensemble!r}")
        if ensemble != "nve" and temperature_K is None:
            raise ValueError(f"{ensemble.upper()} needs temperature_K")
        if ensemble == "npt" and not self.periodic:
            raise ValueError("NPT needs a periodic cell")
        if seed is not None:
            if temperature_K is None:
                raise ValueError("drawing velocities (seed) needs temperature_K")
            self.set_velocities(temperature_K, seed)
        steps, sample_every = int(steps), max(1, int(sample_every))
        dt = timestep_fs * units.fs
        n = self.n_atoms
        masses = self.masses
        npt = ensemble == "npt"

        thermostat = barostat = None
        if ensemble in ("nvt", "npt"):
            kT = units.kB * temperature_K
            tdamp = thermostat_damping_fs * units.fs
            thermostat = _NoseHooverChain(
                [3 * n * kT * tdamp**2] + [kT * tdamp**2] * (chain_length - 1), 3 * n, kT, chain_loops
            )
        if npt:
            pdamp = barostat_damping_fs * units.fs
            # ASE's IsotropicMTKBarostat: W = (3N + 3) kT tau_p^2, chain masses 9 kT tau_p^2, kT tau_p^2, ...
            w_baro = (3 * n + 3) * kT * pdamp**2
            barostat = _NoseHooverChain(
                [9 * kT * pdamp**2] + [kT * pdamp**2] * (chain_length - 1), 1, kT, chain_loops
            )
            p_ext = pressure_bar * units.bar
            cell0 = self.cell.clone()
            baro = {"eps": 0.0, "p_eps": 0.0}
        if npt and self._state.strain_derivative is None:
            self._state = self._evaluate(self.positions, self.cell, need_virial=True)

        # The step functions below are the Trotter splittings of ase.md.verlet.VelocityVerlet and of
        # ase.md.nose_hoover_chain.NoseHooverChainNVT / IsotropicMTKNPT, operation for operation.  They are
        # written out here, not delegated to ASE, so that positions, momenta, forces and the virial stay in
        # torch and come from one model evaluation per step (see the module docstring).

        def two_kinetic() -> float:
            return float((self.momenta.square() / masses).sum())

        def cell_force() -> float:
            # G_eps = 3 V (P_inst - P_ext) + 2K/N with 3 V P_inst = 2K - tr(dE/d(epsilon))  (ASE's MTK)
            two_k = two_kinetic()
            virial = float(torch.trace(self._state.strain_derivative))
            return two_k * (1.0 + 1.0 / n) - virial - 3.0 * self.volume() * p_ext

        def thermostat_half():
            scale = thermostat.half_step(two_kinetic(), dt / 2)
            self.momenta = self.momenta * scale

        def step_nve():
            self.momenta = self.momenta + (0.5 * dt) * self._state.forces
            self._move(self.positions + dt * self.momenta / masses, self.cell, need_virial=False)
            self.momenta = self.momenta + (0.5 * dt) * self._state.forces

        def step_nvt():
            thermostat_half()
            step_nve()
            thermostat_half()

        def kick_npt(delta):
            x = (1.0 + 1.0 / n) * baro["p_eps"] * delta / w_baro
            self.momenta = self.momenta * math.exp(-x) + (delta * _exprel(-x)) * self._state.forces

        def step_npt():
            baro["p_eps"] *= barostat.half_step(baro["p_eps"] ** 2 / w_baro, dt / 2)
            thermostat_half()
            baro["p_eps"] += 0.5 * dt * cell_force()
            kick_npt(0.5 * dt)
            x = dt * baro["p_eps"] / w_baro
            positions = self.positions * math.exp(x) + self.momenta * (dt * _exprel(x)) / masses
            baro["eps"] += dt * baro["p_eps"] / w_baro
            self._move(positions, cell0 * math.exp(baro["eps"]), need_virial=True)
            kick_npt(0.5 * dt)
            baro["p_eps"] += 0.5 * dt * cell_force()
            thermostat_half()
            baro["p_eps"] *= barostat.half_step(baro["p_eps"] ** 2 / w_baro, dt / 2)

        def conserved(potential: float, kinetic: float) -> float:
            value = potential + kinetic
            if thermostat is not None:
                value += thermostat.energy()
            if npt:
                value += barostat.energy() + baro["p_eps"] ** 2 / (2 * w_baro) + p_ext * self.volume()
            return value

        step_once = {"nve": step_nve, "nvt": step_nvt, "npt": step_npt}[ensemble]

        frames: list[Atoms] = []
        series = {key: [] for key in SERIES_KEYS}
        progress = None
        if progress_label:
            from .progress import Progress

            progress = Progress(progress_label, steps)

        def sample(step: int) -> tuple[dict, Atoms]:
            if (
                self._state.strain_derivative is None
                and pressure_every_sample
                and self.periodic
                and bool(torch.isfinite(self.positions).all())
            ):
                try:  # keep the step's forces (the trajectory must not depend on sampling); add the virial
                    virial = self._evaluate(self.positions, self.cell, need_virial=True).strain_derivative
                    self._state.strain_derivative = virial
                except Exception:  # the sample is still useful without the pressure
                    pass
            kinetic = self.kinetic_energy()
            forces = self._state.forces
            values = {
                "step": step,
                "time_fs": step * timestep_fs,
                "temperature_K": 2.0 * kinetic / (3 * n * units.kB),
                "potential_eV": self._state.energy,
                "kinetic_eV": kinetic,
                "conserved_eV": conserved(self._state.energy, kinetic),
                "max_force_eV_A": float(torch.linalg.vector_norm(forces, dim=1).max()),
                "min_distance_A": self._state.min_distance,
                "volume_A3": self.volume(),
                "pressure_bar": self.pressure_bar(),
            }
            for key in SERIES_KEYS:
                series[key].append(values[key])
            frame = self.to_atoms(with_results=True)
            frame.info["time_fs"] = values["time_fs"]
            frame.info["step"] = step
            frames.append(frame)
            return values, frame

        def check() -> str:
            state = self._state
            max_force = float(torch.linalg.vector_norm(state.forces, dim=1).max())
            if not (math.isfinite(state.energy) and math.isfinite(max_force)
                    and bool(torch.isfinite(self.momenta).all())):
                return STOP_NONFINITE
            if max_force > max_force_eV_A:
                return STOP_FORCE
            if state.min_distance < min_distance_A:
                return STOP_DISTANCE
            return ""

        builds0 = self.neighbours.builds
        stop = check()
        values, frame = sample(0)
        if not stop and callback is not None:
            stop = _callback_reason(callback(frame, values))
        done = 0
        wall0, cpu0 = time.perf_counter(), time.process_time()
        while not stop and done < steps:
            try:
                step_once()
            except Exception as err:  # a model far outside its data can break the integration
                done += 1
                stop = f"integration failed: {err}"
                break
            done += 1
            stop = check()
            if stop or done % sample_every == 0:
                values, frame = sample(done)
                if not stop and callback is not None:
                    stop = _callback_reason(callback(frame, values))
            if progress is not None:
                progress(done, note=f"T = {self.temperature():.0f} K")
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        return MDResult(
            frames=frames,
            series={k: np.asarray(v, dtype=float) for k, v in series.items()},
            stop_reason=stop,
            steps=done,
            wall_time_s=wall,
            cpu_time_s=cpu,
            neighbour_list_builds=self.neighbours.builds - builds0,
            ensemble=ensemble,
            timestep_fs=float(timestep_fs),
        )


def _callback_reason(answer) -> str:
    if isinstance(answer, str):
        return answer
    return STOP_CALLBACK if answer else ""
