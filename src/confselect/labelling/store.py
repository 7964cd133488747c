"""A content-addressed store of labels: a configuration is labelled once per labeller and settings.

Snakemake decides which label jobs to run, and it may decide to rerun one (a changed script, ``--forceall``,
an interrupted job's metadata).  Reference calculations are the expensive part of the whole workflow, so
the label job first looks here: the key is a hash of the configuration (atomic numbers, positions, cell,
pbc) and the labeller id (name + hash of its settings).  Entries are written atomically and never
overwritten, so an interrupted run resumes without recomputing any finished label.  Failure records are
stored too: a frame whose SCF failed with these settings is not retried on every rerun (delete the entry
to retry it).
"""

from __future__ import annotations

import hashlib
import os
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
