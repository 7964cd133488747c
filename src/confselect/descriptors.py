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
    """Untrained SchNet feature map: ``transform(frames) -> (n_frames, n_species * n_atom_basis)`` float32.

    ``device``: a resolved torch device (:func:`confselect.devices.resolve_device`).  The weights are drawn
    on the CPU from ``seed`` and then moved, so every device starts from the same network; neighbour lists
    are built on the CPU (matscipy) and each batch is moved to the device with them.  ``threads``: torch
    intra-op threads (None: torch's setting).
    """

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
        device: str = "cpu",
    ):
        self.species = list(species)
        self.n_atom_basis = n_atom_basis
        self.n_interactions = n_interactions
        self.n_rbf = n_rbf
        self.cutoff_A = cutoff_A
        self.seed = seed
        self.batch_size = batch_size
        self.threads = threads
        self.device = device
        self._model = None

    def _build(self):
        import schnetpack as spk
        import schnetpack.transform as trn
        import torch
        from ase.data import atomic_numbers

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
        self._model = representation.to(self.device).eval()
        self._converter = spk.interfaces.AtomsConverter(
            neighbor_list=trn.MatScipyNeighborList(cutoff=self.cutoff_A), device=self.device, dtype=torch.float32
        )
        self._z_of_species = torch.tensor([atomic_numbers[s] for s in self.species], device=self.device)

    @property
    def dim(self) -> int:
        return len(self.species) * self.n_atom_basis

    def transform(self, frames, n_frames: int | None = None, progress_label: str | None = None) -> np.ndarray:
        """Raw (unstandardised) pooled features, shape (n_frames, dim), float32.

        ``frames`` may be any iterable of Atoms (e.g. ``ase.io.iread``): it is consumed in batches, so a
        pool never has to fit in memory as Atoms objects, only as the (n_frames, dim) float32 result.
        """
        import itertools

        import torch

        if self._model is None:
            self._build()
        if n_frames is None and hasattr(frames, "__len__"):
            n_frames = len(frames)
        progress = Progress(progress_label, n_frames or 1) if progress_label else None
        chunks, done = [], 0
        iterator = iter(frames)
        with torch.inference_mode():
            while batch := list(itertools.islice(iterator, self.batch_size)):
                chunks.append(self._pooled(batch, start=done))
                done += len(batch)
                if progress:
                    progress(done)
        if not chunks:
            return np.empty((0, self.dim), dtype=np.float32)
        return np.concatenate(chunks)

    def _pooled(self, batch, start: int) -> np.ndarray:
        """Per-species mean features of one batch of frames (``start``: index of its first frame, for errors)."""
        import schnetpack.properties as props
        import torch

        inputs = self._distances(self._converter(batch))
        features = self._model(inputs)["scalar_representation"]
        onehot = inputs[props.Z][:, None] == self._z_of_species[None, :]  # (atoms, species)
        unknown = ~onehot.any(dim=1)
        if unknown.any():
            frame = start + int(inputs[props.idx_m][unknown][0])
            z = int(inputs[props.Z][unknown][0])
            raise ValueError(f"frame {frame}: element Z={z} is not one of the descriptor species {self.species}")
        # segment sums over (frame, species), then divide by the atom counts
        key = inputs[props.idx_m] * len(self.species) + onehot.float().argmax(dim=1)
        sums = torch.zeros(len(batch) * len(self.species), self.n_atom_basis, device=features.device)
        sums.index_add_(0, key, features)
        counts = torch.bincount(key, minlength=sums.shape[0]).clamp(min=1)[:, None]
        return (sums / counts).reshape(len(batch), self.dim).cpu().numpy()


def standardise(descriptors: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Zero mean and unit variance per dimension over the pool (dimensions without spread are set to 0)."""
    x = np.asarray(descriptors, dtype=np.float64)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    scaled = np.where(std > eps, (x - mean) / np.where(std > eps, std, 1.0), 0.0)
    return scaled.astype(np.float32)
