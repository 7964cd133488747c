"""One label job: a frame in, its label (or failure record) out, computed at most once across all jobs.

The workflow's label rule is a thin entry point around :func:`label_frame`, so that the logic is tested here
and a change to it does not make Snakemake rerun every label job (a script's modification time is one of its
rerun triggers).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from . import LabelFailure, failure_record, make_labeller
from .store import LabelStore


def label_frame(atoms, name: str, settings: dict, store: LabelStore, out: Path, workdir: Path, threads: int = 1,
                provenance: dict | None = None, log=print) -> Path:
    """Write the label of ``atoms`` to ``out``: the stored one if there is one, else computed under the
    store's claim (another job computing the same frame is waited for), stored, then copied.

    ``provenance`` (frame, role, labeller id, ...) is added to a computed label's info. Returns the store path.
    """
    stored = store.get(atoms)
    if stored is not None:
        log(f"label reused from {stored}", flush=True)
    else:
        with store.claim(atoms, log=log):
            stored = store.get(atoms)
            if stored is not None:
                log(f"label computed meanwhile by another job: {stored}", flush=True)
            else:
                labeller = make_labeller(name, settings, threads=threads)
                try:
                    labelled = labeller.label(atoms, workdir=str(workdir))
                except LabelFailure as err:
                    log(f"no label ({err})", flush=True)
                    labelled = failure_record(atoms, name, err)
                labelled.info.update(label_threads=int(threads), **(provenance or {}))
                stored = store.put(labelled, original=atoms)
    tmp = out.with_name(out.name + ".part")
    shutil.copyfile(stored, tmp)
    os.replace(tmp, out)
    return stored
