"""Selection methods, one class per method, registered by name in :data:`METHODS`.

The registry names the module of each class and imports it on first use: the Snakefile reads the method
names and checks the configured knobs of every method at each parse (in every cluster job too), and a
selector module may need scipy (``kmeans``) or torch (``rnd``, ``classical_qbc``) once it selects.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from ..upper_bound import FULL_ARM
from .base import PoolFeatures, SelectionError, Selector
from .coverage import coverage

#: name -> (module of this package, class); the registry's order is the order of the README's table.
_REGISTERED = {
    "random": ("random", "RandomSelector"),
    "uniform_time": ("uniform_time", "UniformTimeSelector"),
    "uniform_energy": ("uniform_energy", "UniformEnergySelector"),
    "atomic_energy": ("atomic_energy", "AtomicEnergySelector"),
    "force": ("force", "ForceSelector"),
    "fps": ("fps", "FPSSelector"),
    "kmeans": ("kmeans", "KMeansSelector"),
    "cur": ("cur", "CURSelector"),
    "dopt": ("dopt", "DOptimalSelector"),
    "rnd": ("rnd", "RNDSelector"),
    "classical_qbc": ("classical_qbc", "ClassicalQBCSelector"),
    "al_qbc": ("al_qbc", "ActiveLearningQBC"),
    FULL_ARM: ("full", "FullPoolSelector"),
}


class _Registry(Mapping):
    """A read-only mapping name -> selector class that imports a class's module when it is looked up."""

    def __init__(self, entries: dict[str, tuple[str, str]]):
        self._entries = entries

    def __getitem__(self, name: str) -> type[Selector]:
        module, cls = self._entries[name]
        selector = getattr(importlib.import_module(f"{__name__}.{module}"), cls)
        if selector.name != name:
            raise AssertionError(f"selection.{module}.{cls} is registered as {name!r}, names itself {selector.name!r}")
        return selector

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"METHODS({', '.join(self._entries)})"


METHODS: Mapping[str, type[Selector]] = _Registry(_REGISTERED)


def one_shot_methods() -> list[str]:
    """The methods that order the pool once (every registered method but the iterative ``al_qbc``)."""
    return [name for name in METHODS if not METHODS[name].iterative]


def make_selector(method: str, seed: int = 0, **params) -> Selector:
    """Build the selector registered as ``method`` (unknown names list the known ones)."""
    try:
        cls = METHODS[method]
    except KeyError:
        raise SelectionError(f"unknown selection method {method!r}; known: {sorted(METHODS)}") from None
    return cls(seed=seed, **params)


__all__ = ["FULL_ARM", "METHODS", "one_shot_methods", "PoolFeatures", "SelectionError", "Selector", "coverage", "make_selector"]
