"""SchNet energy, forces and virial for MD: the model as it is ("direct") or with tabulated filters ("tabulated").

Both evaluators take a half pair list within the cutoff (``i``, ``j``, float64 pair vectors ``r_ij`` from
:class:`confselect.neighbours.VerletNeighbourList`) and return ``(energy eV, forces eV/A float64 (N, 3),
dE/d(epsilon) eV float64 (3, 3) or None)``.  :class:`confselect.calculator.SchNetCalculator` puts them behind
ASE's calculator interface.

* "tabulated": a continuous filter ``W(d) = filter_network(rbf(d)) * cutoff(d)`` depends only on the pair
  distance, so it is sampled once on a fine grid (default 0.005 A) together with its exact derivative
  (forward-mode autograd) and evaluated as a piecewise cubic Hermite polynomial.  The interpolant is C1, so
  forces stay the exact gradient of the energy that is integrated.  For the project's SchNet (untrained and
  trained) its largest error is about 1e-7 of the largest filter value, the float32 rounding of the stored
  coefficients, against 4-5e-7 for the float32 network's own deviation from a float64 evaluation.  Everything
  else (embedding, interaction MLPs, atom-wise output, post-processing) is the model's own modules.  The ZBL
  prior (SchNetPack's ``ZBLRepulsionEnergy``) is summed in closed form with its derivative written out.
  Forces and the virial come from one autograd pass w.r.t. the pair distances.
* "direct": the model gets exactly the inputs SchNetPack's ``AtomsConverter`` and neighbour-list transform
  would give (full pair list); the virial from SchNetPack's ``Strain`` response.  The fallback for models the
  tabulated path does not recognise, and the reference it is checked against.

Precision: the model runs in float32 (its training precision); pair vectors are formed in float64 from
float64 positions and only then cast for the network.  Every tensor lives on the device of the model.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import torch


def load_model(model, dtype: torch.dtype = torch.float32, device: str = "cpu") -> torch.nn.Module:
    """A private, inference-ready copy of a SchNetPack model (a path to ``model.pt`` or an ``nn.Module``).

    The copy is cast to ``dtype`` (as ``SpkCalculator`` does), moved to ``device`` and put in eval mode, and
    its parameters stop requiring gradients: forces need gradients w.r.t. the inputs only, and autograd then
    records no weight branches.  The caller's model is left untouched.
    """
    if isinstance(model, (str, Path)):
        model = torch.load(str(model), map_location=device, weights_only=False)
    else:
        model = copy.deepcopy(model)
    model = model.to(device=device, dtype=dtype).eval()
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
        device = next(iter(model.parameters()), torch.zeros(0)).device
        self._constant = {
            "_n_atoms": torch.tensor([n], device=device),
            "_atomic_numbers": torch.as_tensor(np.asarray(numbers, dtype=np.int64), device=device),
            "_pbc": torch.tensor([[periodic] * 3], device=device),
            "_idx": torch.tensor([0], device=device),
            "_idx_m": torch.zeros(n, dtype=torch.int64, device=device),
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
        device = rep.embedding.weight.device
        self.coeffs = self._tables(rep).to(dtype).contiguous()
        numbers_t = torch.as_tensor(np.asarray(numbers, dtype=np.int64), device=device)
        with torch.no_grad():
            self.x0 = rep.embedding(numbers_t).to(dtype)  # atom types never change during a run
        self.blocks = [(block.in2f, block.f2out) for block in rep.interactions]
        atomwise = model.output_modules[0]
        self.outnet = atomwise.outnet
        self.average = atomwise.aggregation_mode == "avg"
        self.energy_key = model.output_modules[-1].energy_key
        self.zbl = _ZBLPairs(model.output_modules[1], numbers, device) if len(model.output_modules) == 4 else None
        self.postprocessors = list(model.postprocessors) if model.do_postprocessing else []
        self._post_inputs = {
            "_n_atoms": torch.tensor([len(numbers_t)], device=device),
            "_idx_m": torch.zeros(len(numbers_t), dtype=torch.int64, device=device),
            "_atomic_numbers": numbers_t,
        }

    def _tables(self, rep) -> torch.Tensor:
        """Hermite coefficients (4, A, K, F) of W_a(d) = filter_a(rbf(d)) * cutoff(d) on the grid, float64."""
        from torch.func import jvp

        rep64 = copy.deepcopy(rep).double()
        h = self.spacing_A
        grid = torch.arange(self.n_intervals + 1, dtype=torch.float64, device=rep.embedding.weight.device) * h

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
        forces = torch.zeros((n, 3), dtype=torch.float64, device=positions.device)
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

    def __init__(self, module, numbers, device="cpu"):
        import torch.nn.functional as F

        with torch.no_grad():
            z = torch.as_tensor(np.asarray(numbers), dtype=torch.float64, device=device)
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


