"""A content-addressed store of labels: a configuration is labelled once per labeller and settings.

Snakemake decides which label jobs to run, and it may decide to rerun one (a changed script, ``--forceall``,
an interrupted job's metadata).  Reference calculations are the expensive part of the whole workflow, so
the label job first looks here: the key is a hash of the configuration (atomic numbers, positions, cell,
pbc) and the labeller id (name + hash of its settings).  Entries are written atomically and never
overwritten, so an interrupted run resumes without recomputing any finished label.  Failure records are
stored too: a frame whose SCF failed with these settings is not retried on every rerun (delete the entry
to retry it).

The labeller id names the physics only (:func:`confselect.config.labeller_id`), so a store moves between
machines as it is. Labels computed elsewhere (another store, or a run's ``results/<system>/labels/<id>/``)
are brought in with

    python -m confselect.labelling.store import SOURCE [SOURCE ...] --configfile CONFIG --system NAME

which checks every file before it enters the store (:func:`import_labels`).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


def configuration_key(atoms) -> str:
    """SHA-256 of the configuration, positions and cell rounded to 1e-6 A (below any physical meaning)."""
    digest = hashlib.sha256()
    digest.update(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
    digest.update(np.round(np.asarray(atoms.positions, dtype=float), 6).tobytes())
    digest.update(np.round(np.asarray(atoms.cell.array, dtype=float), 6).tobytes())
    digest.update(np.asarray(atoms.pbc, dtype=bool).tobytes())
    return digest.hexdigest()


class LabelStore:
    """``get(atoms)`` returns the stored label (or failure record) path or None; ``put`` adds one."""

    def __init__(self, root, labeller_id: str):
        self.root = Path(root) / labeller_id

    def path(self, atoms) -> Path:
        key = configuration_key(atoms)
        return self.root / key[:2] / f"{key}.extxyz"

    def get(self, atoms) -> Path | None:
        path = self.path(atoms)
        return path if path.exists() else None

    def put(self, labelled, original=None) -> Path:
        """Store ``labelled`` under the key of ``original`` (default: of ``labelled`` itself)."""
        from ase.io import write

        path = self.path(original if original is not None else labelled)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
        write(tmp, labelled, format="extxyz")
        os.replace(tmp, path)
        return path


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
            atoms = read(path, format="extxyz")
        except Exception as err:  # noqa: BLE001 - an unreadable file is rejected, the import goes on
            report.rejected.append((str(path), f"unreadable: {err}"))
            continue
        reason = check_label(path, atoms, labeller_id, accept_ids)
        if reason is not None:
            report.rejected.append((str(path), reason))
            continue
        existing = store.get(atoms)
        if existing is not None:
            if is_failure(read(existing, format="extxyz")) and not is_failure(atoms):
                report.replaced_failures.append(str(path))
            else:
                report.already_stored.append(str(path))
                continue
        else:
            report.imported.append(str(path))
        atoms.info["labeller_id"] = labeller_id
        store.put(atoms)
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m confselect.labelling.store",
        description="Import labels computed elsewhere into this workflow's label store.")
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("import", help="check label files and copy them into the store")
    cmd.add_argument("sources", nargs="+", help="label files or directories (a store, or results/<system>/labels/<id>)")
    cmd.add_argument("--configfile", nargs="*", default=[], help="config files merged over config/config.yaml, as given to snakemake")
    cmd.add_argument("--system", required=True, help="system whose labeller the labels belong to")
    cmd.add_argument("--accept", action="append", default=[], metavar="ID",
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
