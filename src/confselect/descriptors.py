"""Per-frame descriptors from an untrained, seeded SchNet representation (000).

Pooling: the per-atom SchNet features are averaged separately over the atoms of each species and the
species means are concatenated (species in the order given, e.g. cation then anion), giving
``n_species * n_atom_basis`` numbers per frame.  A single mean over all atoms would mix the cation and
anion environments, which respond differently to compression and temperature; per-species means keep
them apart and stay independent of the number of atoms, so frames of different size are comparable.
The raw features of an untrained network spread very little (standard deviation ~1e-3), so the
descriptors are standardised per dimension over the pool before any distance is taken.
"""

from __future__ import annotations

import numpy as np

from .progress import Progress


class SchNetDescriptor:
    """Untrained SchNet feature map: ``transform(frames) -> (n_frames, n_species * n_atom_basis)`` float32."""

    def __init__(
        self,
        species: list[str],
        n_atom_basis: int = 64,
        n_interactions: int = 3,
        n_rbf: int = 20,
        cutoff_A: float = 5.0,
        seed: int = 0,
        batch_size: int = 50,
        threads: int | None = None,
    ):
        self.species = list(species)
        self.n_atom_basis = n_atom_basis
        self.n_interactions = n_interactions
        self.n_rbf = n_rbf
        self.cutoff_A = cutoff_A
        self.seed = seed
        self.batch_size = batch_size
        self.threads = threads
        self._model = None

    def _build(self):
        import schnetpack as spk
        import schnetpack.transform as trn
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        with torch.random.fork_rng():  # seeded weights without touching the caller's global RNG
            torch.manual_seed(self.seed)
            representation = spk.representation.SchNet(
                n_atom_basis=self.n_atom_basis,
                n_interactions=self.n_interactions,
                radial_basis=spk.nn.GaussianRBF(n_rbf=self.n_rbf, cutoff=self.cutoff_A),
                cutoff_fn=spk.nn.CosineCutoff(self.cutoff_A),
            )
        self._distances = spk.atomistic.PairwiseDistances()
        self._model = representation.eval()
        self._converter = spk.interfaces.AtomsConverter(
            neighbor_list=trn.MatScipyNeighborList(cutoff=self.cutoff_A), dtype=torch.float32
        )

    @property
    def dim(self) -> int:
        return len(self.species) * self.n_atom_basis

    def transform(self, frames, progress_label: str | None = None) -> np.ndarray:
        """Raw (unstandardised) pooled features of ``frames`` (any iterable of Atoms)."""
        import schnetpack.properties as props
        import torch
        from ase.data import atomic_numbers

        if self._model is None:
            self._build()
        frames = list(frames)
        z_of_species = torch.tensor([atomic_numbers[s] for s in self.species])
        out = np.empty((len(frames), self.dim), dtype=np.float32)
        progress = Progress(progress_label, len(frames)) if progress_label else None
        with torch.no_grad():
            for start in range(0, len(frames), self.batch_size):
                batch = frames[start : start + self.batch_size]
                inputs = self._distances(self._converter(batch))
                features = self._model(inputs)["scalar_representation"]
                frame_of_atom = inputs[props.idx_m]
                onehot = inputs[props.Z][:, None] == z_of_species[None, :]  # (atoms, species)
                # sums[f, s, :] = sum of features of species s in frame f, then divide by counts
                key = frame_of_atom * len(self.species) + onehot.float().argmax(dim=1)
                sums = torch.zeros(len(batch) * len(self.species), self.n_atom_basis)
                sums.index_add_(0, key, features)
                counts = torch.bincount(key, minlength=sums.shape[0]).clamp(min=1)[:, None]
                pooled = (sums / counts).reshape(len(batch), self.dim)
                out[start : start + len(batch)] = pooled.numpy()
                if progress:
                    progress(start + len(batch))
        return out


def standardise(descriptors: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Zero mean and unit variance per dimension over the pool (dimensions without spread are set to 0)."""
    x = np.asarray(descriptors, dtype=np.float64)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    scaled = np.where(std > eps, (x - mean) / np.where(std > eps, std, 1.0), 0.0)
    return scaled.astype(np.float32)
