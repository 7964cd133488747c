"""SchNet training on energies and forces: SchNetPack's model and loss, an in-memory training loop.

The whole training set is used for fitting: sets of 8-32 configurations are too small to give a fifth
away to early stopping, so training runs a gradient-step budget that scales with the set (``max_epochs``
passes over a small set, at most ``max_steps`` steps for a large one) under a cosine learning-rate decay
that ends with the budget, and the final model is kept.  Model quality is measured on the separate
held-out test trajectory, never on training frames.

The loop is ours, not PyTorch Lightning's ``Trainer`` with SchNetPack's ``AtomisticTask``: the model, the
loss (weighted MSE of energy and force components, as ``spk.task.ModelOutput`` with ``MSELoss``) and the
optimiser (AdamW) are the same, but the data stay in memory with neighbour lists built once per frame
(:mod:`confselect.training_data`) and a step does nothing but forward, backward and the update.  On the
demo system this trains 2.6-2.9x faster per step than SchNetPack's standard route
(``benchmarks/bench_training.py``; figures in the README's performance section).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np

from .devices import deterministic_training, resolve_device
from .progress import Progress
from .schnet_halflist import HalfListSchNet, fixed_repulsion
from .training_data import InMemoryDataset


REPULSION = ("none", "zbl")


def build_model(n_atom_basis: int, n_interactions: int, n_rbf: int, cutoff_A: float, energy_mean_per_atom: float,
                repulsion: str = "none"):
    """SchNet energy model with forces as the negative position gradient (energies eV, forces eV/A).

    ``repulsion="zbl"`` adds SchNetPack's Ziegler-Biersack-Littmark screened nuclear repulsion with its
    universal parameters held fixed (not trained) and the model's cosine cutoff, so the network learns the
    energy on top of a wall that keeps ions apart where the training data has no pairs (see
    docs/design.md, "Repulsion prior").
    """
    import schnetpack as spk
    import schnetpack.transform as trn
    import torch

    if repulsion not in REPULSION:
        raise ValueError(f"repulsion must be one of {REPULSION}, got {repulsion!r}")
    representation = spk.representation.SchNet(
        n_atom_basis=n_atom_basis,
        n_interactions=n_interactions,
        radial_basis=spk.nn.GaussianRBF(n_rbf=n_rbf, cutoff=cutoff_A),
        cutoff_fn=spk.nn.CosineCutoff(cutoff_A),
    )
    energy_terms = [spk.atomistic.Atomwise(n_in=n_atom_basis, output_key="energy")]
    if repulsion == "zbl":
        energy_terms = [
            spk.atomistic.Atomwise(n_in=n_atom_basis, output_key="energy_network"),
            spk.atomistic.ZBLRepulsionEnergy(energy_unit="eV", position_unit="Ang", output_key="energy_zbl",
                                             trainable=False, cutoff_fn=spk.nn.CosineCutoff(cutoff_A)),
            spk.atomistic.Aggregation(keys=["energy_network", "energy_zbl"], output_key="energy"),
        ]
    return spk.model.NeuralNetworkPotential(
        representation=representation,
        input_modules=[spk.atomistic.PairwiseDistances()],
        output_modules=[
            *energy_terms,
            spk.atomistic.Forces(energy_key="energy", force_key="forces"),
        ],
        postprocessors=[
            trn.CastTo64(),
            trn.AddOffsets(
                "energy", add_mean=True, property_mean=torch.tensor([energy_mean_per_atom], dtype=torch.float64)
            ),
        ],
    )


def labelled_frames(paths, first: int | None = None, skip: int = 0):
    """Split label files (label batches, the gathered test set, a single label) into usable frames and failure
    records (a failure record has no energy), of the first ``first`` frames in file order (all if None),
    leaving out the first ``skip`` of them. ``paths`` is one file or several. A failure is named
    ``file@index`` (its position in the file)."""
    from ase.io import read

    good, failed, seen = [], [], 0
    for path in [paths] if isinstance(paths, (str, os.PathLike)) else paths:
        for i, atoms in enumerate(read(path, index=":", format="extxyz")):
            if first is not None and seen >= first:
                return good, failed
            seen += 1
            if seen <= skip:
                continue
            if atoms.info.get("label_status", "ok") != "ok" or atoms.calc is None:
                failed.append(f"{path}@{i}")
            else:
                good.append(atoms)
    return good, failed


def failure_record_at(name: str):
    """The failure record that :func:`labelled_frames` names ``file@index``."""
    from ase.io import read

    path, index = name.rsplit("@", 1)
    return read(path, index=int(index), format="extxyz")


class SchNetTrainer:
    """Fit a SchNet potential: ``fit(frames, workdir) -> model`` (also saved as ``workdir/model.pt``).

    The budget is ``min(max_epochs * ceil(n / batch_size), max_steps)`` gradient steps for ``n`` frames;
    the learning rate follows a cosine from ``learning_rate`` down to ``final_learning_rate_fraction``
    of it over that budget.  After :meth:`fit`, :attr:`record` holds steps, epochs, wall time and the final
    losses (written to ``training.json`` by the workflow).
    """

    def __init__(
        self,
        n_atom_basis: int = 64,
        n_interactions: int = 3,
        n_rbf: int = 20,
        cutoff_A: float = 5.0,
        max_epochs: int = 600,
        max_steps: int = 6000,
        batch_size: int = 4,
        learning_rate: float = 5e-3,
        final_learning_rate_fraction: float = 0.01,
        energy_weight: float = 0.05,
        forces_weight: float = 0.95,
        device: str = "cpu",
        threads: int = 1,
        seed: int = 0,
        repulsion: str = "zbl",
        deterministic: bool = True,
    ):
        self.n_atom_basis = n_atom_basis
        self.n_interactions = n_interactions
        self.n_rbf = n_rbf
        self.cutoff_A = cutoff_A
        self.max_epochs = max_epochs
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.final_learning_rate_fraction = final_learning_rate_fraction
        self.energy_weight = energy_weight
        self.forces_weight = forces_weight
        self.device = device
        self.threads = threads
        self.seed = seed
        self.repulsion = repulsion
        self.deterministic = deterministic

    def resolve_device(self) -> str:
        """The torch device of :meth:`fit`; a CUDA request where none is visible stops here, naming
        ``training.device``.  With ``deterministic`` (on CUDA: deterministic kernels, the cuBLAS workspace
        fixed before CUDA is touched; :func:`confselect.devices.deterministic_training`)."""
        if self.deterministic:
            return deterministic_training(self.device, "training.device")
        return resolve_device(self.device, "training.device")

    def n_steps(self, n_frames: int) -> int:
        """Gradient steps for a training set of ``n_frames``."""
        return int(min(self.max_epochs * math.ceil(n_frames / self.batch_size), self.max_steps))

    def learning_rate_at(self, step: int, n_steps: int) -> float:
        """Cosine decay from ``learning_rate`` (step 0) to ``final_learning_rate_fraction`` of it (last step)."""
        low = self.learning_rate * self.final_learning_rate_fraction
        progress = step / max(n_steps - 1, 1)
        return low + 0.5 * (self.learning_rate - low) * (1.0 + math.cos(math.pi * progress))

    def fit(self, frames, workdir, callback=None):
        """Train on ``frames`` (ASE Atoms with energy and forces); ``callback(step, model)`` after each step.

        The callback (e.g. a test-set evaluation in the benchmark) runs with the model in training state;
        its time is not counted in :attr:`record` ``["train_time_s"]``.
        """
        import torch

        if not frames:
            raise ValueError("no labelled frames to train on (all selected frames failed to label?)")
        device = self.resolve_device()
        torch.set_num_threads(self.threads)
        torch.manual_seed(self.seed)
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)

        mean_per_atom = float(np.mean([a.get_potential_energy() / len(a) for a in frames]))
        model = build_model(self.n_atom_basis, self.n_interactions, self.n_rbf, self.cutoff_A, mean_per_atom,
                            repulsion=self.repulsion)
        # The fixed ZBL term is a per-frame constant: subtracted from the targets once (see schnet_halflist).
        network = HalfListSchNet(model)
        data = InMemoryDataset(frames, self.cutoff_A, mean_per_atom, device=device, full_list=False,
                               baseline=lambda inputs: fixed_repulsion(model, inputs),
                               pair_features=network.pair_features)
        network.to(device).train()
        # As AtomisticTask.predict_without_postprocessing: the targets have the offset removed.
        model.do_postprocessing = False
        # fused AdamW: one kernel for all parameters instead of a loop of small ones (2.2 -> 0.65 ms of a
        # 17 ms demo step)
        optimiser = torch.optim.AdamW(model.parameters(), lr=self.learning_rate, fused=True)
        n_steps = self.n_steps(len(data))
        order = _BatchOrder(len(data), self.batch_size, self.seed)
        progress = Progress("training", n_steps)
        history, callback_s = [], 0.0
        start = time.perf_counter()
        for step in range(n_steps):
            for group in optimiser.param_groups:
                group["lr"] = self.learning_rate_at(step, n_steps)
            inputs, targets = data.batch(order.next())
            energy, forces = network(inputs)
            energy_mse = torch.nn.functional.mse_loss(energy, targets["energy"])
            forces_mse = torch.nn.functional.mse_loss(forces, targets["forces"])
            loss = self.energy_weight * energy_mse + self.forces_weight * forces_mse
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            # kept on the device: a float() per step would synchronise a GPU at every step
            history.append(torch.stack([loss, energy_mse, forces_mse]).detach())
            if (step + 1) % 50 == 0 or step + 1 == n_steps:
                progress(step + 1, note=f"loss {float(loss.detach()):.4g}, lr {self.learning_rate_at(step, n_steps):.2g}")
            if callback is not None:
                tick = time.perf_counter()
                callback(step + 1, model)
                callback_s += time.perf_counter() - tick
        train_time_s = time.perf_counter() - start - callback_s

        model.do_postprocessing = True
        model = model.cpu().eval()
        for parameter in model.parameters():
            parameter.grad = None
        torch.save(model, workdir / "model.pt")
        last = torch.stack(history[-order.steps_per_epoch:]).double().cpu().numpy()
        self.record = {
            "steps": n_steps,
            "epochs": n_steps * self.batch_size / len(data),
            "batch_size": self.batch_size,
            "train_time_s": train_time_s,
            "s_per_step": train_time_s / n_steps,
            "device": device,
            "threads": self.threads,
            "deterministic_kernels": self.deterministic and device.startswith("cuda"),  # CPU: reproducible anyway
            "repulsion": self.repulsion,
            # mean over the last epoch (or step) of training: eV^2 (energy, offset removed) and (eV/A)^2
            "final_loss": float(last[:, 0].mean()),
            "final_energy_mse_eV2": float(last[:, 1].mean()),
            "final_forces_mse_eV2_A2": float(last[:, 2].mean()),
            "final_learning_rate": self.learning_rate_at(n_steps - 1, n_steps),
        }
        return model


class _BatchOrder:
    """Reshuffled passes over the frames, ``batch_size`` at a time (the last batch of a pass may be short)."""

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.batch_size = n, batch_size
        self.rng = np.random.default_rng(seed)
        self.steps_per_epoch = math.ceil(n / batch_size)
        self._queue: list = []

    def next(self):
        if not self._queue:
            order = self.rng.permutation(self.n)
            self._queue = [order[k:k + self.batch_size] for k in range(0, self.n, self.batch_size)]
        return self._queue.pop(0)
