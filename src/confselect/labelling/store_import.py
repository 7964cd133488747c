"""Labels computed elsewhere, checked and brought into this workflow's label store.

    python -m confselect.labelling.store_import SOURCE [SOURCE ...] --configfile CONFIG --system NAME

SOURCE is a label store (``results/label_store/<labeller id>/``), a run's ``results/<system>/labels/<id>/``,
or single label files. The config files are those given to snakemake; they name the store and the
system's labeller, whose id (its physics) every imported label must have been made under.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .store import LabelStore, configuration_key

#: A labeller id as :func:`confselect.config.labeller_id` writes it, as a path component.
LABELLER_ID = re.compile(r"^[a-z0-9_]+-[0-9a-f]{8}$")
KEY = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class ImportReport:
    """What :func:`import_labels` did with each source file."""

    imported: list = field(default_factory=list)
    replaced_failures: list = field(default_factory=list)
    already_stored: list = field(default_factory=list)
    rejected: list = field(default_factory=list)  # (path, reason)

    def summary(self) -> str:
        lines = [f"imported {len(self.imported)}, replaced failure records {len(self.replaced_failures)}, "
                 f"already stored {len(self.already_stored)}, rejected {len(self.rejected)}"]
        lines += [f"  rejected {path}: {reason}" for path, reason in self.rejected]
        return "\n".join(lines)


def is_failure(atoms) -> bool:
    return atoms.info.get("label_status") == "failed"


def source_labeller_id(path: Path, atoms) -> str | None:
    """The labeller id a label was made under: recorded in the label, else the nearest path component that
    reads as one (a store's ``<root>/<id>/`` or a run's ``labels/<id>/``)."""
    recorded = atoms.info.get("labeller_id")
    if recorded:
        return str(recorded)
    return next((part for part in reversed(path.parts[:-1]) if LABELLER_ID.match(part)), None)


def check_label(path: Path, atoms, labeller_id: str, accept_ids=()) -> str | None:
    """Why the label in ``path`` may not enter the store of ``labeller_id`` (None if it may)."""
    import numpy as np

    made_under = source_labeller_id(path, atoms)
    if made_under is None:
        return "no labeller id recorded in the label or its path (name the source's with --accept)"
    if made_under != labeller_id and made_under not in accept_ids:
        return (f"made under labeller {made_under}, this store holds {labeller_id} (other physics; "
                "--accept ID imports it anyway if the two settings are known to be equal)")
    if KEY.match(path.stem) and path.stem != configuration_key(atoms):
        return "its configuration does not hash to its file name: the file was changed after it was stored"
    if is_failure(atoms):
        if atoms.info.get("label_transient"):
            return "a transient failure record (time limit, killed job): it says nothing about the frame"
        return None
    try:
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    except Exception:  # noqa: BLE001 - any reader problem means no usable label
        return "no energy and forces in the file"
    if forces.shape != (len(atoms), 3) or not (np.isfinite(energy) and np.all(np.isfinite(forces))):
        return "energy or forces missing or not finite"
    return None


def import_labels(sources, store: LabelStore, labeller_id: str, accept_ids=()) -> ImportReport:
    """Copy the labels found in ``sources`` (files or directories, searched for ``*.extxyz``) into ``store``.

    Each file is checked first (:func:`check_label`): the labeller id it was made under must be the store's
    (or named in ``accept_ids``), a file stored under its configuration hash must still hash to that name,
    and a label must hold finite energy and forces for every atom. A stored label is never replaced; a
    stored failure record is replaced by a label. Nothing is computed.
    """
    from ase.io import read

    report = ImportReport()
    files = []
    for source in map(Path, sources):
        files += sorted(source.rglob("*.extxyz")) if source.is_dir() else [source]
    for path in files:
        try:
            frames = read(path, index=":", format="extxyz")
        except Exception as err:  # noqa: BLE001 - an unreadable file is rejected, the import goes on
            report.rejected.append((str(path), f"unreadable: {err}"))
            continue
        for i, atoms in enumerate(frames):  # a store entry holds one frame, a run's label batch several
            name = str(path) if len(frames) == 1 else f"{path}@{i}"
            reason = check_label(path, atoms, labeller_id, accept_ids)
            if reason is not None:
                report.rejected.append((name, reason))
                continue
            existing = store.get(atoms)
            if existing is not None:
                if is_failure(read(existing, format="extxyz")) and not is_failure(atoms):
                    report.replaced_failures.append(name)
                else:
                    report.already_stored.append(name)
                    continue
            else:
                report.imported.append(name)
            atoms.info["labeller_id"] = labeller_id
            atoms.info.pop("label_origin", None)  # about the job that wrote the batch, not the label
            store.put(atoms)
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m confselect.labelling.store_import",
        description="Import labels computed elsewhere into this workflow's label store.")
    parser.add_argument("sources", nargs="+", help="label files or directories (a store, or results/<system>/labels/<id>)")
    parser.add_argument("--configfile", nargs="*", default=[], help="config files merged over config/config.yaml, as given to snakemake")
    parser.add_argument("--system", required=True, help="system whose labeller the labels belong to")
    parser.add_argument("--accept", action="append", default=[], metavar="ID",
                     help="also accept labels made under this labeller id (settings known to be equal)")
    args = parser.parse_args(argv)

    from ..config import labeller_id, load_config

    config = load_config(args.configfile)
    if args.system not in config["systems"]:
        parser.error(f"--system {args.system}: not under 'systems' of the config (defined: {sorted(config['systems'])})")
    target = labeller_id(config, args.system)
    report = import_labels(args.sources, LabelStore(config["labelling"]["store"], target), target, args.accept)
    print(f"store {config['labelling']['store']}/{target}: {report.summary()}")
    return 1 if report.rejected else 0


if __name__ == "__main__":
    sys.exit(main())
