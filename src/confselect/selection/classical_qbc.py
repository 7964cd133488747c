"""Query by committee on the pool's classical energies: a cheap pool ranking, not 003's active learning.

The active-learning loop of 003 (committees of the deployed SchNet model, ML-MD exploration, labels computed
as it goes) is ``al_qbc`` (:mod:`confselect.active_learning`).  This selector borrows only QBC's ranking
rule: its committee is a set of small descriptor networks fitted to the *classical* energies the pool
already carries, so every query is free and it explores where the classical surface, not the labeller's,
is poorly pinned down by the picks.
"""

from __future__ import annotations

import numpy as np

from .base import PoolFeatures, SelectionError, Selector
from .rnd import torch_threads

# torch is imported inside the methods, as in rnd.py: an optional dependency that is slow to import.

#: Pool rows scored per block (4096 x 64 hidden units x committee members of float32 stay small).
SCORE_ROWS = 4096


class ClassicalQBCSelector(Selector):
    """Query by committee on the pool's classical energies, in batches (003's ranking rule, not its loop).

    003 trains an ensemble of K networks on the data labelled so far and queries the configurations where
    the ensemble's energy predictions disagree most, rho = sigma_E / sqrt(N_atoms). A pool selection has
    no labeller labels yet, so the committee here learns the *classical* energy the pool already carries (as
    000's energy-based baselines read it): K small MLPs from the frame descriptor to the energy, each fitted
    to its own bootstrap resample of the frames picked so far. Frames where the committee extrapolates
    (descriptor regions no pick has covered, or where the energy varies in ways the picks do not pin down)
    have a large sigma and are queried next.

    Order: the first ``n_initial`` picks are a seeded random sample (the committee needs data to start
    from); then rounds of: fit the committee on all picks, add the ``batch_size`` unpicked frames of
    largest sigma (ties: lowest index). The rounds do not depend on the requested n, so the method is
    greedy and prefix-consistent. All pool frames hold the same atom count (one MD pool), so ranking by
    sigma_E ranks by rho = sigma_E / sqrt(N) as in 003.

    Committee members share their architecture (d -> hidden... -> 1, SiLU) but not their initial weights
    (all drawn from a local generator seeded by ``seed``) nor their bootstrap weights (redrawn every round
    from a seeded numpy generator). Each round continues training from the previous round's weights
    (``steps_per_round`` full-batch Adam steps on the bootstrap-weighted mean squared error of the
    standardised energy). The K members are evaluated as one batched network (weights of shape
    (K, fan_in, fan_out)), so a round costs one pass over the pool.

    Parameters
    ----------
    seed : seeds the initial random picks, the committee's weights and the bootstrap draws.
    n_committee : K, committee size (default 8; 003's ensembles have 5 members, each trained on 4 folds of
        a 5-fold cross-validation split; here members differ by bootstrap resamples and initial weights).
    hidden : hidden widths of every member (default (64, 64)).
    n_initial : random picks before the committee is first fitted (default 4).
    batch_size : frames queried per round (default 4).
    steps_per_round : Adam steps per round (default 100).
    learning_rate : Adam learning rate (default 3e-3).
    threads : torch intra-op threads while scoring (default None: unchanged).
    device : torch device of the committee and the pool tensors (default "cpu"; the workflow passes
        ``selection.device``, resolved). The committee is initialised on the CPU whatever the device.
    """

    name = "classical_qbc"
    requires = ("descriptors", "energies")

    def __init__(
        self,
        seed: int = 0,
        n_committee: int = 8,
        hidden: tuple[int, ...] = (64, 64),
        n_initial: int = 4,
        batch_size: int = 4,
        steps_per_round: int = 100,
        learning_rate: float = 3e-3,
        threads: int | None = None,
        device: str = "cpu",
    ):
        super().__init__(seed)
        for key, value, low in (("n_committee", n_committee, 2), ("n_initial", n_initial, 1),
                                ("batch_size", batch_size, 1), ("steps_per_round", steps_per_round, 0)):
            if int(value) != value or int(value) < low:
                raise SelectionError(f"classical_qbc: {key} must be an integer >= {low}, got {value!r}")
        self.n_committee = int(n_committee)
        self.hidden = tuple(int(w) for w in hidden)
        self.n_initial = int(n_initial)
        self.batch_size = int(batch_size)
        self.steps_per_round = int(steps_per_round)
        self.learning_rate = float(learning_rate)
        self.threads = None if threads is None else int(threads)
        self.device = device

    def _select(self, pool: PoolFeatures, n: int) -> np.ndarray:
        with torch_threads(self.threads):
            return self._query(pool, n)

    def committee(self, n_features: int):
        """A freshly initialised committee (:class:`EnsembleMLP`) for ``n_features`` descriptors."""
        import torch

        generator = torch.Generator().manual_seed(int(np.random.SeedSequence(self.seed).generate_state(1)[0]))
        return EnsembleMLP(self.n_committee, (n_features, *self.hidden, 1), generator, self.device)

    def disagreement(self, committee, x) -> "np.ndarray":
        """sigma of the committee's (standardised) energy predictions for every row of ``x``."""
        import torch

        with torch.no_grad():
            out = torch.cat([committee(block).std(dim=0) for block in x.split(SCORE_ROWS)])
        return out.cpu().numpy().astype(np.float64)

    def _query(self, pool: PoolFeatures, n: int) -> np.ndarray:
        import torch

        rng = np.random.default_rng(self.seed)
        size = len(pool)
        order = list(rng.permutation(size)[: min(n, self.n_initial)])
        if len(order) == n:
            return np.asarray(order, dtype=np.int64)
        x = torch.as_tensor(np.ascontiguousarray(pool.descriptors, dtype=np.float32), device=self.device)
        energies = np.asarray(pool.energies, dtype=np.float64)
        committee = self.committee(x.shape[1])
        optimiser = torch.optim.Adam(committee.parameters(), lr=self.learning_rate)
        selected = np.zeros(size, dtype=bool)
        selected[order] = True
        while len(order) < n:
            picks = np.asarray(order)
            y = energies[picks]
            scale = y.std()
            y = (y - y.mean()) / (scale if scale > 0 else 1.0)  # picks of equal energy: all targets 0
            # Bootstrap: member k sees pick i with multiplicity counts[k, i] (multinomial, mean 1).
            counts = rng.multinomial(len(picks), np.full(len(picks), 1.0 / len(picks)), size=self.n_committee)
            weights = torch.as_tensor(counts, dtype=torch.float32, device=self.device)
            inputs, targets = x[picks], torch.as_tensor(y, dtype=torch.float32, device=self.device)
            with torch_threads(1):  # a few hundred rows: worker threads would only add waiting
                for _ in range(self.steps_per_round):
                    optimiser.zero_grad()
                    residual = committee(inputs) - targets  # (K, picks)
                    loss = ((weights * residual.square()).sum(dim=1) / weights.sum(dim=1)).sum()
                    loss.backward()
                    optimiser.step()
            sigma = self.disagreement(committee, x)
            sigma[selected] = -np.inf
            take = min(self.batch_size, n - len(order))
            # Largest sigma first; a stable sort on -sigma breaks ties by the lowest index.
            batch = np.argsort(-sigma, kind="stable")[:take]
            order.extend(int(i) for i in batch)
            selected[batch] = True
        return np.asarray(order, dtype=np.int64)


class EnsembleMLP:
    """K independent MLPs evaluated as one batched network: (rows, d) -> (K, rows).

    Weights are (K, fan_in, fan_out) tensors, initialised like ``torch.nn.Linear`` (uniform in
    +-1/sqrt(fan_in)) from ``generator`` (a CPU generator) and then moved to ``device``; SiLU between
    layers. Written here because torch has no ensemble layer; ``torch.func.stack_module_state`` + ``vmap``
    would do the same with more machinery.
    """

    def __init__(self, k: int, widths: tuple[int, ...], generator, device: str = "cpu"):
        import torch

        self.layers = []
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            bound = 1.0 / np.sqrt(fan_in)
            weight = torch.empty(k, fan_in, fan_out).uniform_(-bound, bound, generator=generator).to(device)
            bias = torch.empty(k, 1, fan_out).uniform_(-bound, bound, generator=generator).to(device)
            self.layers.append((weight.requires_grad_(), bias.requires_grad_()))

    def parameters(self):
        return [p for layer in self.layers for p in layer]

    def __call__(self, x):
        import torch

        h = x.unsqueeze(0).expand(len(self.layers[0][0]), -1, -1)
        for i, (weight, bias) in enumerate(self.layers):
            h = torch.baddbmm(bias, h, weight)
            if i < len(self.layers) - 1:
                h = torch.nn.functional.silu(h)
        return h.squeeze(-1)
