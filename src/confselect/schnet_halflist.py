"""SchNet energies and forces on a half pair list, with the forces from an explicit reverse pass: the same
function as SchNetPack's forward, for training.

A SchNet filter ``W(d_ij) = filter_network(rbf(d_ij)) * cutoff(d_ij)`` depends only on the pair distance,
so ``W_ij = W_ji``.  SchNetPack evaluates it on the full pair list, i.e. twice per pair, in the forward
pass, in the force (first) backward pass and again in the double backward that training on forces needs;
the filter networks are most of a training step (``torch.profiler`` on the demo model: the pair-sized
``mm``/``mul``/``softplus`` kernels and their backward take about 70 % of a step).  :class:`HalfListSchNet`
evaluates each filter once per unordered pair and sends the message both ways,

    m_i = sum_j h_j W_ij  =  sum over half-list pairs (i, j): m_i += h_j W_ij and m_j += h_i W_ij,

using the model's own parameters (embedding, radial basis, cutoff, interaction blocks, atom-wise output
net), so the parameters trained here are SchNetPack's and the saved model is an ordinary SchNetPack model.

The forces are not taken with ``torch.autograd.grad(..., create_graph=True)``: the energy's gradient with
respect to the pair distances is written out layer by layer (:meth:`HalfListSchNet.forward`, reusing the
forward pass's gathered features), so the training loss is an ordinary first-order graph and one
``backward()`` gives the parameter gradients.  Autograd's double backward through its own backward graph
costs more: 16.0 against 11.6 ms per demo step (64 ions, batch 4, one thread, same loss and gradients).
The tests check energies, forces and the loss's parameter gradients against SchNetPack's own forward and
autograd on periodic melts.  ``index_add`` is used for every gather/scatter (its backward is a plain
``index_select``, cheaper than SchNetPack's ``x[idx]`` indexing whose backward is an accumulating
``index_put``).

Supported: the models :func:`confselect.training.build_model` builds (SchNet + ``Atomwise``, optionally
with the fixed ZBL term, which training handles as a per-frame constant: see :func:`fixed_repulsion`)
with the activations whose derivatives are written here (shifted softplus, SiLU, none).
:func:`unsupported` says why another model is not.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _activation_derivatives():
    """activation -> (derivative given the pre-activation), for the activations SchNetPack's layers use."""
    from schnetpack.nn.activations import shifted_softplus

    def silu_derivative(a):
        s = torch.sigmoid(a)
        return s * (1.0 + a * (1.0 - s))

    return {shifted_softplus: torch.sigmoid, F.silu: silu_derivative}


def _derivative(activation):
    """The activation's derivative, ``None`` for the identity, or KeyError if it is not written here."""
    if isinstance(activation, torch.nn.Identity):
        return None
    return _activation_derivatives()[activation]


def _dense_layers(module) -> list:
    """``(layer, derivative of its activation)`` for the ``Dense`` layers of a ``Dense`` or a ``Sequential``
    of them, in order; resolved once per model, not per step (ValueError for anything else)."""
    import schnetpack as spk

    layers = list(module) if isinstance(module, torch.nn.Sequential) else [module]
    chain = []
    for layer in layers:
        if not isinstance(layer, spk.nn.Dense):
            raise ValueError(f"{type(layer).__name__} is not a schnetpack Dense layer")
        try:
            chain.append((layer, _derivative(layer.activation)))
        except KeyError:
            raise ValueError(f"activation {layer.activation!r} has no derivative written here") from None
    return chain


def dense_forward(chain, y):
    """Output of a chain of ``Dense`` layers and the pre-activations :func:`dense_backward` needs."""
    pre = []
    for layer, _ in chain:
        a = F.linear(y, layer.weight, layer.bias)
        pre.append(a)
        y = layer.activation(a)
    return y, pre


def dense_backward(chain, pre, grad):
    """Gradient with respect to the chain's input, given ``grad`` with respect to its output."""
    for (layer, derivative), a in zip(reversed(chain), reversed(pre)):
        if derivative is not None:
            grad = grad * derivative(a)
        grad = grad @ layer.weight
    return grad


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
    try:
        for interaction in rep.interactions:
            for part in (interaction.in2f, interaction.filter_network, interaction.f2out):
                _dense_layers(part)
        _dense_layers(atomwise[0].outnet)
    except ValueError as error:
        return str(error)
    return ""


class HalfListSchNet(torch.nn.Module):
    """Network energy (eV, the Atomwise output without the fixed ZBL term) and forces (eV/A) of a
    SchNetPack SchNet potential on a training batch with a half pair list (``_idx_i``, ``_idx_j``: each
    unordered pair, periodic images included, once) and the pair features of :meth:`pair_features`.

    A training frame does not move, so everything that depends on the pair distance alone is computed
    once per frame (:meth:`pair_features`): the radial basis and the cutoff with their derivatives
    d/dd (forward-mode autograd through the model's own modules) and the unit pair vectors.  The forces
    then follow from dE/dd_ij by the chain rule; neither the forward nor the reverse pass goes through the
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
        self._blocks = [(_dense_layers(it.in2f), _dense_layers(it.filter_network), _dense_layers(it.f2out))
                        for it in self.representation.interactions]
        self._outnet = _dense_layers(self.atomwise.outnet)

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
        idx_i, idx_j = inputs["_idx_i"], inputs["_idx_j"]
        rbf, cutoff = inputs["_rbf"], inputs["_cutoff"][:, None]
        x = self.representation.embedding(inputs["_atomic_numbers"])
        saved = []
        for in2f, filter_layers, f2out in self._blocks:
            h, in2f_pre = dense_forward(in2f, x)
            filters, filter_pre = dense_forward(filter_layers, rbf)
            w_ij = filters * cutoff
            h_j, h_i = h.index_select(0, idx_j), h.index_select(0, idx_i)
            message = torch.zeros_like(h).index_add(0, idx_i, h_j * w_ij).index_add(0, idx_j, h_i * w_ij)
            update, update_pre = dense_forward(f2out, message)
            x = x + update
            saved.append((in2f_pre, filters, filter_pre, w_ij, h_j, h_i, update_pre))
        per_atom, out_pre = dense_forward(self._outnet, x)
        n_structures = int(inputs["_n_atoms"].shape[0])
        energy = torch.zeros(n_structures, dtype=per_atom.dtype, device=per_atom.device)
        energy = energy.index_add(0, inputs["_idx_m"], per_atom.squeeze(-1))

        # Reverse pass: g = dE/dx (E the sum over the batch; structures do not interact), layer by layer.
        g = dense_backward(self._outnet, out_pre, torch.ones_like(per_atom))
        de_dd = torch.zeros_like(inputs["_cutoff"])
        for (in2f, filter_layers, f2out), (in2f_pre, filters, filter_pre, w_ij, h_j, h_i, update_pre) in zip(
                reversed(self._blocks), reversed(saved)):
            g_message = dense_backward(f2out, update_pre, g)
            g_i, g_j = g_message.index_select(0, idx_i), g_message.index_select(0, idx_j)
            g_w = g_i * h_j + g_j * h_i
            g_h = torch.zeros_like(g_message).index_add(0, idx_j, g_i * w_ij).index_add(0, idx_i, g_j * w_ij)
            g = g + dense_backward(in2f, in2f_pre, g_h)
            g_rbf = dense_backward(filter_layers, filter_pre, g_w * cutoff)
            de_dd = (de_dd + (g_rbf * inputs["_rbf_derivative"]).sum(dim=1)
                     + (g_w * filters).sum(dim=1) * inputs["_cutoff_derivative"])
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
