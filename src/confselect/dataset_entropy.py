"""Model-free figures of a training set's atomic environments: QUESTS's dataset entropy and diversity
(Schwalbe-Koda et al., Nat. Commun. (2025)), computed with the ``quests`` package."""

from __future__ import annotations

import numpy as np


def quests_metrics(frames, sizes, k: int, cutoff_A: float, bandwidth_1_A: float) -> dict:
    """QUESTS's dataset entropy (nats) and diversity of the first n of ``frames`` for every n in ``sizes``:
    ``{n: {"quests_entropy_nats", "quests_diversity"}}``.  Model-free figures of the atomic environments a
    training set holds (the ``quests`` package: k-nearest-neighbour descriptors, Gaussian kernel density),
    so a user can see whether the method that covers more also trains better."""
    from quests.descriptor import get_descriptors
    from quests.entropy import diversity, entropy

    largest = max(sizes)
    x = get_descriptors(list(frames[:largest]), k=k, cutoff=cutoff_A)
    ends = np.cumsum([len(atoms) for atoms in frames[:largest]])
    out = {}
    for n in sizes:
        rows = x[: ends[min(n, largest) - 1]]
        out[n] = {"quests_entropy_nats": float(entropy(rows, h=bandwidth_1_A)),
                  "quests_diversity": float(diversity(rows, h=bandwidth_1_A))}
    return out
