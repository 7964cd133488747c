"""Random network distillation (RND) selection, as in the RND letter on molten NaCl and KCl (000)."""

from __future__ import annotations

import contextlib

import numpy as np

from .base import PoolFeatures, SelectionError, Selector

# torch is imported inside the methods: it is an optional dependency of the package and takes seconds to
# import, which the other selection methods should not pay.

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "silu")
DISTANCES = ("euclidean", "cosine")
#: Pool rows pushed through g at once when scoring: 4096 x 128 float32 activations (2 MB) stay in cache.
SCORE_ROWS = 4096


class RNDSelector(Selector):
    """Pick the frames a distilled predictor network has not yet learned to imitate.

    A target network f: R^d -> R^k with fixed random weights embeds every descriptor; a predictor network
    g of the same architecture (independently seeded weights) is trained to reproduce f on the frames
    picked so far. The novelty of a frame is d(x) = ||f(x) - g(x)||_2 (or the cosine distance
    1 - cos(f(x), g(x))). Each step scores the whole pool, picks the highest-scoring frame not yet picked,
    and trains g towards f on *all* picked frames (``steps_per_pick`` full-batch Adam steps on the mean
    squared distance, or the mean cosine distance); then repeats. Where g already matches f, the pool is
    considered seen, so the picks spread over the regions g has not been shown.

    Both networks are MLPs d -> hidden... -> k initialised like ``torch.nn.Linear`` (uniform in
    +-1/sqrt(fan_in)) from local ``torch.Generator`` objects: f from the selector's seed, g from an
    independent seed derived from it. Nothing touches torch's global random state. f(x) is computed once;
    only g is re-evaluated per pick, in float32 under ``torch.no_grad``, in blocks of SCORE_ROWS rows
    with in-place activations. The
    selection is greedy, hence prefix-consistent, and bit-identical between runs with the same seed and
    thread count.

    Parameters
    ----------
    seed : seeds both networks (independent streams).
    hidden : widths of the hidden layers (default (128, 128)).
    out_features : k, the embedding width (default 32).
    activation : one of ACTIVATIONS (default "relu": piecewise linear, so d(x) keeps growing with the
        distance from the trained frames instead of saturating).
    learning_rate : Adam learning rate (default 1e-3).
    steps_per_pick : Adam steps on all picked frames after each pick (default 20).
    distance : "euclidean" (default) or "cosine" (the cosine *distance* 1 - cos, never the similarity).
    device : torch device (default "cpu"; the workflow passes ``selection.device``, resolved). The networks
        are initialised on the CPU whatever the device; every tensor of the loop then lives on ``device``.
        On CUDA the scores differ from the CPU's in rounding, so a selection there is not guaranteed to be
        bit-identical to the CPU's (ties and near-ties can be picked in another order).
    threads : torch intra-op threads for scoring the pool (default None: keep torch's setting). The
        training steps always run on one thread: their batches are the picked frames only (hundreds of
        rows), where worker threads add synchronisation but no speed, and on shared cores they stall
        waiting for descheduled workers. Thread counts are process-wide in torch; the previous count is
        restored when the selection returns.
    """

    name = "rnd"

    def __init__(
        self,
        seed: int = 0,
        hidden: tuple[int, ...] = (128, 128),
        out_features: int = 32,
        activation: str = "relu",
        learning_rate: float = 1e-3,
        steps_per_pick: int = 20,
        distance: str = "euclidean",
        device: str = "cpu",
        threads: int | None = None,
    ):
        super().__init__(seed)
        if activation not in ACTIVATIONS:
            raise SelectionError(f"rnd: unknown activation {activation!r}; choose one of {ACTIVATIONS}")
        if distance not in DISTANCES:
            raise SelectionError(f"rnd: unknown distance {distance!r}; choose one of {DISTANCES}")
        self.hidden = tuple(int(w) for w in hidden)
        self.out_features = int(out_features)
        self.activation = activation
        self.learning_rate = float(learning_rate)
        self.steps_per_pick = int(steps_per_pick)
        self.distance = distance
        self.device = device
        self.threads = None if threads is None else int(threads)

    def networks(self, n_features: int):
        """The (target, predictor) pair for ``n_features``-dimensional descriptors, freshly initialised."""
        target_seed, predictor_seed = np.random.SeedSequence(self.seed).generate_state(2, dtype=np.uint64)
        return self._mlp(n_features, int(target_seed)), self._mlp(n_features, int(predictor_seed))

    def _mlp(self, n_features: int, seed: int):
        import torch

        # Drawn on the CPU and then moved: a CUDA generator gives other numbers for the same seed, and the
        # networks of a seed must not depend on the device the selection runs on.
        generator = torch.Generator().manual_seed(seed)
        widths = (n_features, *self.hidden, self.out_features)
        layers = []
        for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
            # skip_init: no draw from the global generator; the weights come from ``generator`` below.
            linear = torch.nn.utils.skip_init(torch.nn.Linear, fan_in, fan_out, dtype=torch.float32)
            bound = 1.0 / np.sqrt(fan_in)
            with torch.no_grad():
                linear.weight.uniform_(-bound, bound, generator=generator)
                linear.bias.uniform_(-bound, bound, generator=generator)
            layers.append(linear)
            if i < len(widths) - 2:
                layers.append(_activation(self.activation))
        return torch.nn.Sequential(*layers).to(self.device)

    def _select(self, pool: PoolFeatures, n: int) -> np.ndarray:
        import torch

        with torch_threads(self.threads):
            return self._distil(pool, n)

    def _distil(self, pool: PoolFeatures, n: int) -> np.ndarray:
        """The RND loop: score, pick the best unpicked frame, train g on all picks, repeat."""
        import torch

        x = torch.as_tensor(np.ascontiguousarray(pool.descriptors, dtype=np.float32), device=self.device)
        target, predictor = self.networks(x.shape[1])
        with torch.no_grad():
            embedded = torch.cat([target(block) for block in x.split(SCORE_ROWS)])
        optimiser = torch.optim.Adam(predictor.parameters(), lr=self.learning_rate)
        selected = torch.zeros(len(x), dtype=torch.bool, device=self.device)
        order, picked_at, history = [], [], []
        for t in range(n):
            scores = self._scores(predictor, x, embedded)
            if t:  # the predictor has been trained on the picks so far: their distances against the rest's
                history.append((float(scores[selected].mean()), float(scores[selected].max()),
                                float(scores[~selected].mean())))
            scores[selected] = -torch.inf
            pick = int(torch.argmax(scores))  # first maximum on ties
            order.append(pick)
            picked_at.append(float(scores[pick]))
            selected[pick] = True
            if t + 1 < n:  # training after the last pick could not change the selection
                picked = torch.as_tensor(order, device=self.device)
                inputs, targets = x[picked], embedded[picked]
                with torch_threads(1):  # small batches: worker threads would only add waiting
                    for _ in range(self.steps_per_pick):
                        optimiser.zero_grad()
                        loss = self._loss(predictor(inputs), targets)
                        loss.backward()
                        optimiser.step()
        # fitted attributes (scikit-learn style): each pick's distance when it was picked, and before every
        # later pick the mean and largest distance of the frames picked so far and the mean of the others
        self.pick_distances_ = np.asarray(picked_at)
        self.distance_history_ = np.asarray(history).reshape(-1, 3)
        return np.asarray(order, dtype=np.int64)

    def _scores(self, predictor, x, embedded):
        """d(x) for every pool frame; g is evaluated block by block with in-place activations (the
        values are those of ``predictor(x)``; only temporaries are saved)."""
        import torch

        activation = _INPLACE[self.activation]
        scores = []
        with torch.no_grad():
            for block, target in zip(x.split(SCORE_ROWS), embedded.split(SCORE_ROWS)):
                h = block
                for layer in predictor:
                    if isinstance(layer, torch.nn.Linear):
                        h = torch.nn.functional.linear(h, layer.weight, layer.bias)
                    else:
                        activation(h)
                scores.append(self._distance(h, target))
        return torch.cat(scores)

    def _distance(self, a, b):
        import torch

        if self.distance == "cosine":
            return 1.0 - torch.nn.functional.cosine_similarity(a, b, dim=1, eps=1e-12)
        return torch.linalg.vector_norm(a - b, dim=1)

    def _loss(self, prediction, target):
        if self.distance == "cosine":
            return self._distance(prediction, target).mean()
        return ((prediction - target) ** 2).sum(dim=1).mean()


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """Run the block with ``threads`` torch intra-op threads (None: unchanged), then restore the count."""
    import torch

    previous = torch.get_num_threads()
    if threads is not None and threads != previous:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


def _activation(name: str):
    import torch

    return {
        "relu": torch.nn.ReLU,
        "leaky_relu": torch.nn.LeakyReLU,
        "tanh": torch.nn.Tanh,
        "silu": torch.nn.SiLU,
    }[name]()


def _relu_(h):
    return h.relu_()


def _leaky_relu_(h):
    import torch

    return torch.nn.functional.leaky_relu_(h)


def _tanh_(h):
    return h.tanh_()


def _silu_(h):
    import torch

    return torch.nn.functional.silu(h, inplace=True)


#: In-place twins of the activations, for scoring without autograd.
_INPLACE = {"relu": _relu_, "leaky_relu": _leaky_relu_, "tanh": _tanh_, "silu": _silu_}
