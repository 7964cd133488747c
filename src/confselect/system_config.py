"""A system of the configuration (``systems.<name>``): what its classical runs and labels depend on, and the
checks that its species, charges, structure, potential and validation agree, before any job.
"""

from __future__ import annotations

from .config import ConfigError


def teacher_identity(system: dict, key: str = "system") -> dict:
    """What the classical teacher's numbers depend on: the potential (files by content, not path), its
    species order and charges. A Tosi-Fumi teacher is its charges and pairs, as it always was."""
    from .potentials import potential_identity

    potential = system["potential"]
    if potential["type"] == "born_mayer_huggins_tosi_fumi":
        return {"potential": potential, "charges_e": system["charges_e"]}
    identity = {"species": list(system["species"]), "potential": potential_identity(potential, f"{key}.potential")}
    if system.get("charges_e"):
        identity["charges_e"] = system["charges_e"]
    return identity


def system_definition(system: dict, key: str = "system") -> dict:
    """What a system's classical runs (pool MD, reference runs) depend on: the teacher's identity, the
    species and the starting structure. A rule param (a moved potential file reruns nothing); the jobs run
    the system as the config gives it (files by path)."""
    return {**teacher_identity(system, key), "species": list(system["species"]), "structure": system["structure"],
            "phase": system.get("phase")}


def check_system(system: dict, key: str) -> None:
    """A system's species, charges, structure and potential agree with each other (files found, species
    covered) and its structure can be built; raises :class:`ConfigError` naming the key."""
    from .potentials import PotentialError, check_potential
    from .structures import unit_cell

    species = list(system["species"])
    charges = system.get("charges_e") or {}
    unknown = sorted(set(charges) - set(species))
    if unknown:
        raise ConfigError(f"{key}.charges_e: {unknown} not in {key}.species {species}")
    potential = system["potential"]
    if potential["type"] == "born_mayer_huggins_tosi_fumi":
        missing = [s for s in species if s not in charges]
        if missing:
            raise ConfigError(f"{key}.charges_e: the Tosi-Fumi potential needs a charge for {missing}")
        pairs = potential["pairs"]
        for a in species:
            for b in species:
                if f"{a}-{b}" not in pairs and f"{b}-{a}" not in pairs:
                    raise ConfigError(f"{key}.potential.pairs: no parameters for the pair {a}-{b}")
        for pair in pairs:
            stray = set(pair.split("-")) - set(species)
            if stray:
                raise ConfigError(f"{key}.potential.pairs.{pair}: species {sorted(stray)} not in {key}.species")
    try:
        check_potential(system, f"{key}.potential")
    except PotentialError as err:
        raise ConfigError(str(err)) from None
    structure = system["structure"]
    if structure["kind"] == "random_melt":
        if list(structure["composition"]) != species:
            raise ConfigError(f"{key}.structure.composition: {list(structure['composition'])} must list {key}.species "
                              f"{species} in that order")
        if charges and abs(sum(charges.get(s, 0.0) * n for s, n in structure["composition"].items())) > 1e-9:
            raise ConfigError(f"{key}.structure.composition: the melt's charge is not zero with charges {charges}")
    else:
        try:
            unit_cell(species, structure)
        except (ValueError, KeyError, RuntimeError) as err:
            raise ConfigError(f"{key}.structure: ASE cannot build {structure['crystal']} of {species}: {err}") from None


def check_rdf_range(config: dict, system: dict, key: str) -> None:
    """``validation.rdf.rmax_A`` fits a crystal's validation cell: at most half its smallest height (the
    bulk structure repeated ``validation.supercell`` times), with 2 % to spare for thermal expansion. (A
    melt's box follows its NPT density; the RDF job itself names an rmax that does not fit.)"""
    import numpy as np

    from .structures import unit_cell

    structure = system["structure"]
    if structure["kind"] != "bulk":
        return
    cell = unit_cell(system["species"], structure).cell.array * np.asarray(structure["supercell"])[:, None]
    volume = abs(np.linalg.det(cell))
    heights = [volume / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3])) for i in range(3)]
    limit = 0.98 * 0.5 * float(min(np.asarray(heights) * np.asarray(config["validation"]["supercell"])))
    rmax = config["validation"]["rdf"]["rmax_A"]
    if rmax > limit:
        raise ConfigError(
            f"validation.rdf.rmax_A = {rmax:g} A exceeds half the smallest height of {key}'s validation cell "
            f"({limit:.3g} A with 2 % margin): lower it or enlarge {key}.structure.supercell or validation.supercell"
        )


def check_crystal_validation(config: dict, system: dict, key: str) -> None:
    """The crystal observables asked for apply to the system (a crystal phase needs a bulk structure;
    elastic constants C11, C12, C44 need a cubic cell)."""
    from .structures import system_phase, unit_cell

    if system_phase(system) != "crystal":
        return
    structure = system["structure"]
    if structure["kind"] != "bulk":
        raise ConfigError(f"{key}.phase: crystal validation needs a bulk structure ({key}.structure.kind: bulk), "
                          f"not {structure['kind']}")
    cell = unit_cell(system["species"], structure).cell
    lengths, angles = cell.cellpar()[:3], cell.cellpar()[3:]
    cubic = abs(lengths - lengths[0]).max() < 1e-6 and abs(angles - 90.0).max() < 1e-6
    if "elastic" in config["validation"]["crystal"]["observables"] and not cubic:
        raise ConfigError(
            f"validation.crystal.observables: elastic constants C11, C12, C44 need a cubic cell; {key}.structure "
            f"({structure['crystal']}) is not cubic: leave elastic out"
        )
