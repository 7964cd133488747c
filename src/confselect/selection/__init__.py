"""Selection methods, one class per method, registered by name in :data:`METHODS`."""

from .atomic_energy import AtomicEnergySelector
from .base import PoolFeatures, SelectionError, Selector
from .coverage import coverage
from .cur import CURSelector
from .dopt import DOptimalSelector
from .force import ForceSelector
from .fps import FPSSelector
from .full import FULL_ARM, FullPoolSelector
from .kmeans import KMeansSelector
from .qbc import QBCSelector
from .random import RandomSelector
from .rnd import RNDSelector
from .uniform_energy import UniformEnergySelector
from .uniform_time import UniformTimeSelector

METHODS: dict[str, type[Selector]] = {
    cls.name: cls
    for cls in (
        RandomSelector,
        UniformTimeSelector,
        UniformEnergySelector,
        AtomicEnergySelector,
        ForceSelector,
        FPSSelector,
        KMeansSelector,
        CURSelector,
        DOptimalSelector,
        RNDSelector,
        QBCSelector,
        FullPoolSelector,
    )
}


def make_selector(method: str, seed: int = 0, **params) -> Selector:
    """Build the selector registered as ``method`` (unknown names list the known ones)."""
    try:
        cls = METHODS[method]
    except KeyError:
        raise SelectionError(f"unknown selection method {method!r}; known: {sorted(METHODS)}") from None
    return cls(seed=seed, **params)


__all__ = ["FULL_ARM", "METHODS", "PoolFeatures", "SelectionError", "Selector", "coverage", "make_selector"]
