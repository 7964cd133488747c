"""SchNet energies and forces on a half pair list: the same function as SchNetPack's forward, for training.

A SchNet filter ``W(d_ij) = filter_network(rbf(d_ij)) * cutoff(d_ij)`` depends only on the pair distance,
so ``W_ij = W_ji``.  SchNetPack evaluates it on the full pair list, i.e. twice per pair, in the forward
pass, in the force (first) backward pass and again in the double backward that training on forces needs;
the filter networks are most of a training step (``torch.profiler`` on the demo model: the pair-sized
``mm``/``mul``/``softplus`` kernels and their backward take about 70 % of a step).  :class:`HalfListSchNet`
evaluates each filter once per unordered pair and sends the message both ways,

    m_i = sum_j h_j W_ij  =  sum over half-list pairs (i, j): m_i += h_j W_ij and m_j += h_i W_ij,

using the model's own modules (embedding, radial basis, cutoff, interaction blocks, atom-wise output net),
so the parameters trained here are SchNetPack's and the saved model is an ordinary SchNetPack model.  The
tests check energies and forces against the model's own forward on periodic melts.  ``index_add`` is used
for every gather/scatter (its backward is a plain ``index_select``, cheaper than SchNetPack's
``x[idx]`` indexing whose backward is an accumulating ``index_put``).

Supported: the models :func:`confselect.training.build_model` builds (SchNet + ``Atomwise``, optionally
with the fixed ZBL term, which training handles as a per-frame constant: see
:func:`fixed_repulsion`).  :func:`unsupported` says why another model is not.
"""

from __future__ import annotations

import torch


def unsupported(model) -> str:
    """"" if :class:`HalfListSchNet` can evaluate ``model``, else the reason it cannot."""
    import schnetpack as spk

    rep = getattr(model, "representation", None)
    if not isinstance(rep, spk.representation.SchNet):
        return f"representation is {type(rep).__name__}, not SchNet"
    if len(rep.electronic_embeddings):
        return "electronic embeddings are not supported"
    atomwise = [m for m in model.output_modules if isinstance(m, spk.atomistic.Atomwise)]
    if len(atomwise) != 1 or atomwise[0].aggregation_mode != "sum":
        return "needs exactly one Atomwise output with sum aggregation"
    return ""


class HalfListSchNet(torch.nn.Module):
    """Network energy (eV, the Atomwise output without the fixed ZBL term) and forces (eV/A) of a
    SchNetPack SchNet potential on a training batch with a half pair list (``_idx_i``, ``_idx_j``: each
    unordered pair, periodic images included, once) and the pair features of :meth:`pair_features`.

    A training frame does not move, so everything that depends on the pair distance alone is computed
    once per frame (:meth:`pair_features`): the radial basis and the cutoff with their derivatives
    d/dd (forward-mode autograd through the model's own modules) and the unit pair vectors.  A step then
    differentiates the energy with respect to the radial basis and the cutoff values, and the chain rule
    gives dE/dd_ij and the forces; neither the step's forward pass nor its double backward goes through the
    distance, the Gaussians or the cosine again (13 % of a demo step, measured interleaved).
    """

    def __init__(self, model):
        super().__init__()
        reason = unsupported(model)
        if reason:
            raise ValueError(f"HalfListSchNet: {reason}")
        import schnetpack as spk

        self.model = model
        self.representation = model.representation
        self.atomwise = next(m for m in model.output_modules if isinstance(m, spk.atomistic.Atomwise))

    def pair_features(self, inputs: dict) -> dict:
        """``_rbf``, ``_rbf_derivative`` (P, n_rbf), ``_cutoff``, ``_cutoff_derivative`` (P) and ``_unit``
        (P, 3) of the pairs in ``inputs``; fixed for a frame as long as the basis has no trainable part."""
        from torch.func import jvp

        rep = self.representation
        if any(p.requires_grad for p in rep.radial_basis.parameters()):
            raise ValueError("the radial basis is trainable: its values cannot be precomputed per frame")
        r_ij = (inputs["_positions"].index_select(0, inputs["_idx_j"])
                - inputs["_positions"].index_select(0, inputs["_idx_i"]) + inputs["_offsets"])
        d_ij = torch.linalg.vector_norm(r_ij, dim=1)
        ones = torch.ones_like(d_ij)
        with torch.no_grad():
            rbf, rbf_derivative = jvp(rep.radial_basis, (d_ij,), (ones,))
            cutoff, cutoff_derivative = jvp(rep.cutoff_fn, (d_ij,), (ones,))
        return {"_rbf": rbf, "_rbf_derivative": rbf_derivative, "_cutoff": cutoff,
                "_cutoff_derivative": cutoff_derivative, "_unit": r_ij / d_ij[:, None]}

    def forward(self, inputs: dict) -> tuple[torch.Tensor, torch.Tensor]:
        rep = self.representation
        idx_i, idx_j = inputs["_idx_i"], inputs["_idx_j"]
        rbf = inputs["_rbf"].detach().requires_grad_(True)
        cutoff = inputs["_cutoff"].detach().requires_grad_(True)
        cutoff_column = cutoff[:, None]
        x = rep.embedding(inputs["_atomic_numbers"])
        for interaction in rep.interactions:
            h = interaction.in2f(x)
            w_ij = interaction.filter_network(rbf) * cutoff_column
            message = torch.zeros_like(h)
            message = message.index_add(0, idx_i, h.index_select(0, idx_j) * w_ij)
            message = message.index_add(0, idx_j, h.index_select(0, idx_i) * w_ij)
            x = x + interaction.f2out(message)
        per_atom = self.atomwise.outnet(x).squeeze(-1)
        n_structures = int(inputs["_n_atoms"].shape[0])
        energy = torch.zeros(n_structures, dtype=per_atom.dtype, device=per_atom.device)
        energy = energy.index_add(0, inputs["_idx_m"], per_atom)
        d_rbf, d_cutoff = torch.autograd.grad(energy.sum(), (rbf, cutoff), create_graph=self.training)
        de_dd = (d_rbf * inputs["_rbf_derivative"]).sum(dim=1) + d_cutoff * inputs["_cutoff_derivative"]
        # d(d_ij)/dR_j = u_ij = -d(d_ij)/dR_i, and F = -dE/dR
        pull = de_dd[:, None] * inputs["_unit"]
        forces = torch.zeros_like(inputs["_positions"]).index_add(0, idx_i, pull).index_add(0, idx_j, -pull)
        return energy, forces


def fixed_repulsion(model, inputs_full: dict) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Energy (eV, per structure) and forces (eV/A) of the model's fixed ZBL term on full-list inputs, or
    None if the model has none.  The ZBL parameters are not trained, so for a training frame this is a
    constant: training fits the network to the labels minus it (the same loss, without evaluating the
    ZBL term and its double backward at every step)."""
    import schnetpack as spk

    zbl = [m for m in model.output_modules if isinstance(m, spk.atomistic.ZBLRepulsionEnergy)]
    if not zbl:
        return None
    if any(p.requires_grad for p in zbl[0].parameters()):
        raise ValueError("the ZBL term is trainable: it cannot be precomputed")
    inputs = {k: v.clone() for k, v in inputs_full.items()}
    positions = inputs["_positions"].requires_grad_(True)
    inputs["_Rij"] = (positions.index_select(0, inputs["_idx_j"]) - positions.index_select(0, inputs["_idx_i"])
                      + inputs["_offsets"])
    energy = zbl[0](inputs)[zbl[0].output_key]
    (gradient,) = torch.autograd.grad(energy.sum(), positions)
    return energy.detach(), -gradient.detach()
