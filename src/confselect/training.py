"""SchNet training on energies and forces with SchNetPack (model, data set, Lightning task).

The whole training set is used for fitting: sets of 8-32 configurations are too small to give a fifth
away to early stopping, so training runs a fixed number of epochs (a config knob) with the learning rate
reduced on the training loss plateau, and the final model is kept.  Model quality is measured on the
separate held-out test trajectory, never on training frames.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .progress import Progress


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


def labelled_frames(paths):
    """Split label files into usable frames and failure records (a failure record has no energy)."""
    from ase.io import read

    good, failed = [], []
    for path in paths:
        atoms = read(path, format="extxyz")
        if atoms.info.get("label_status", "ok") != "ok" or atoms.calc is None:
            failed.append(str(path))
        else:
            good.append(atoms)
    return good, failed


class SchNetTrainer:
    """Fit a SchNet potential: ``fit(frames, workdir) -> model`` (also saved as ``workdir/model.pt``)."""

    def __init__(
        self,
        n_atom_basis: int = 64,
        n_interactions: int = 3,
        n_rbf: int = 20,
        cutoff_A: float = 5.0,
        epochs: int = 100,
        batch_size: int = 4,
        learning_rate: float = 5e-4,
        energy_weight: float = 0.05,
        forces_weight: float = 0.95,
        device: str = "cpu",
        threads: int = 1,
        seed: int = 0,
        repulsion: str = "none",
    ):
        self.n_atom_basis = n_atom_basis
        self.n_interactions = n_interactions
        self.n_rbf = n_rbf
        self.cutoff_A = cutoff_A
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.energy_weight = energy_weight
        self.forces_weight = forces_weight
        self.device = device
        self.threads = threads
        self.seed = seed
        self.repulsion = repulsion

    def fit(self, frames, workdir):
        import pytorch_lightning as pl
        import schnetpack as spk
        import schnetpack.transform as trn
        import torch
        import torchmetrics

        if not frames:
            raise ValueError("no labelled frames to train on (all selected frames failed to label?)")
        torch.set_num_threads(self.threads)
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        pl.seed_everything(self.seed, workers=True, verbose=False)

        db = workdir / "train.db"
        db.unlink(missing_ok=True)
        dataset = spk.data.ASEAtomsData.create(
            str(db), distance_unit="Ang", property_unit_dict={"energy": "eV", "forces": "eV/Ang"}
        )
        dataset.add_systems(
            [
                {"energy": np.array([a.get_potential_energy()]), "forces": a.get_forces()}
                for a in frames
            ],
            frames,
        )
        mean_per_atom = float(np.mean([a.get_potential_energy() / len(a) for a in frames]))
        dataset.transforms = [
            trn.MatScipyNeighborList(cutoff=self.cutoff_A),
            trn.RemoveOffsets(
                "energy", remove_mean=True, property_mean=torch.tensor([mean_per_atom], dtype=torch.float64)
            ),
            trn.CastTo32(),
        ]
        loader = spk.data.AtomsLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=True,
            num_workers=0,
            generator=torch.Generator().manual_seed(self.seed),
        )
        model = build_model(self.n_atom_basis, self.n_interactions, self.n_rbf, self.cutoff_A, mean_per_atom,
                            repulsion=self.repulsion)
        outputs = [
            spk.task.ModelOutput(
                name=key,
                loss_fn=torch.nn.MSELoss(),
                loss_weight=weight,
                metrics={"MAE": torchmetrics.MeanAbsoluteError()},
            )
            for key, weight in (("energy", self.energy_weight), ("forces", self.forces_weight))
        ]
        task = spk.task.AtomisticTask(
            model=model,
            outputs=outputs,
            optimizer_cls=torch.optim.AdamW,
            optimizer_args={"lr": self.learning_rate},
            scheduler_cls=spk.train.ReduceLROnPlateau,
            scheduler_args={"factor": 0.5, "patience": max(5, self.epochs // 10)},
            scheduler_monitor="train_loss",
        )
        progress = _EpochProgress(self.epochs)
        trainer = pl.Trainer(
            max_epochs=self.epochs,
            accelerator=self.device,
            devices=1,
            logger=pl.loggers.CSVLogger(str(workdir), name="", version="log"),
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[progress],
            log_every_n_steps=1,
            deterministic=True,
        )
        start = time.perf_counter()
        trainer.fit(task, train_dataloaders=loader)
        self.train_time_s = time.perf_counter() - start
        model = task.model.cpu().eval()
        torch.save(model, workdir / "model.pt")
        db.unlink(missing_ok=True)
        return model


class _EpochProgress:
    """Lightning callback printing one progress line every few seconds."""

    def __new__(cls, epochs):
        import pytorch_lightning as pl

        class EpochProgress(pl.Callback):
            def __init__(self):
                self.progress = Progress("training", epochs)

            def on_train_epoch_end(self, trainer, pl_module):
                loss = trainer.callback_metrics.get("train_loss")
                note = f"train loss {float(loss):.4g}" if loss is not None else ""
                self.progress(trainer.current_epoch + 1, note=note)

        return EpochProgress()
