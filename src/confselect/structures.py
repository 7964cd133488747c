"""A system's starting structure from its config (``systems.<name>.structure``): Atoms out.

* ``bulk``: an ASE bulk crystal (``ase.build.bulk``: crystal structure, lattice constant, c/a) repeated to a
  supercell; the conventional cubic cell where the lattice has one (``cubic: true``), else ASE's
  orthorhombic cell, so that LAMMPS's box and an isotropic barostat take it as it is.
* ``random_melt``: a cubic box of randomly placed atoms of the given composition at a density, no pair
  closer than ``min_distance_A`` (000's molten-salt start).

:func:`system_phase` says which validation applies: ``crystal`` or ``liquid``.
"""

from __future__ import annotations

import numpy as np

#: Avogadro's number (1/mol), for the mass density of a random melt.
AVOGADRO = 6.02214076e23


def system_phase(system: dict) -> str:
    """``systems.<name>.phase`` if set, else crystal for a bulk structure and liquid for a random melt."""
    return system.get("phase") or ("crystal" if system["structure"]["kind"] == "bulk" else "liquid")


def structure_atoms(system: dict) -> int:
    """Number of atoms of the system's starting structure (without building a random melt)."""
    structure = system["structure"]
    if structure["kind"] == "random_melt":
        return int(sum(structure["composition"].values()))
    return len(unit_cell(system["species"], structure)) * int(np.prod(structure["supercell"]))


def build_structure(system: dict, seed: int = 0):
    """The starting structure of ``system`` (the seed only matters for a random melt)."""
    structure = system["structure"]
    if structure["kind"] == "bulk":
        return bulk_crystal(system["species"], structure)
    return random_melt(structure["composition"], structure["density_g_cm3"], seed, structure["min_distance_A"])


def unit_cell(species: list[str], structure: dict, primitive: bool = False):
    """One conventional (cubic or orthorhombic) cell of the bulk crystal, or ASE's primitive cell."""
    from ase.build import bulk

    kwargs = {"a": structure["lattice_constant_A"]}
    if structure.get("c_over_a"):
        kwargs["covera"] = structure["c_over_a"]
    name = "".join(species)
    if primitive:
        return bulk(name, structure["crystal"], **kwargs)
    try:
        return bulk(name, structure["crystal"], cubic=True, **kwargs)
    except Exception:  # ASE has no cubic cell for this lattice (hcp): its orthorhombic one
        return bulk(name, structure["crystal"], orthorhombic=True, **kwargs)


def bulk_crystal(species: list[str], structure: dict):
    """The crystal supercell: ``supercell`` repeats of the conventional cell."""
    return unit_cell(species, structure).repeat(tuple(structure["supercell"]))


def random_melt(composition: dict, density_g_cm3: float, seed: int, min_distance_A: float):
    """A cubic box of randomly placed atoms (species in composition order) at the given mass density.

    Written here (not LAMMPS ``create_atoms random``) so that the same seeded start is available to ASE
    code too; rejection sampling is cheap at molten-salt densities.
    """
    from ase import Atoms
    from ase.data import atomic_masses, atomic_numbers

    formula = []
    for symbol, count in composition.items():
        formula += [symbol] * int(count)
    mass_g = sum(atomic_masses[atomic_numbers[s]] for s in formula) / AVOGADRO
    length = (mass_g / density_g_cm3 * 1e24) ** (1.0 / 3.0)
    rng = np.random.default_rng(seed)
    positions = np.empty((len(formula), 3))
    for k in range(len(formula)):
        for _ in range(100000):
            trial = rng.uniform(0.0, length, 3)
            if k == 0:
                break
            d = positions[:k] - trial
            d -= length * np.round(d / length)
            if np.min(np.linalg.norm(d, axis=1)) >= min_distance_A:
                break
        else:
            raise RuntimeError(f"could not place atom {k} at {density_g_cm3} g/cm^3 with {min_distance_A} A spacing")
        positions[k] = trial
    return Atoms(formula, positions=positions, cell=[length] * 3, pbc=True)
