"""One label job: a frame's label from the store, or computed, or a failure record; never a failed job.

* A stored label is always reused. A stored failure record is reused only if it was made with the same
  solver settings as the labeller's now (``label_solver_settings``); otherwise the frame is computed again
  and the new label or deterministic failure replaces it.
* A deterministic failure (:class:`LabelFailure` with ``transient=False``: the SCF did not converge, CP2K
  aborted on the input) is stored like a label, so reruns do not repeat it.
* A transient failure (timeout, signal, missing launcher, unreadable output) is written to the job's output
  only: deleting that file, or ``--forcerun``, tries the frame again.
* The labeller's work directory (input, output, forces) is kept for a failed frame and removed after a label.
* A frame is computed only under its claim in the store, so two jobs never compute the same frame (a rerun
  beside the still-running jobs of a killed driver, or two workflows sharing one store).

The workflow's label rule is a thin entry point around :func:`label_frame`, so that a change here does not
make Snakemake rerun every label job (a script's modification time is one of its rerun triggers).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ase import Atoms
from ase.io import read, write

from . import LabelFailure, failure_record, make_labeller
from .store import LabelStore


def _reusable(path: Path, solver_settings: str | None) -> bool:
    """A stored label, or a stored failure made with these solver settings (or by a labeller without any)."""
    if solver_settings is None:
        return True
    info = read(path, format="extxyz").info
    return info.get("label_status") != "failed" or info.get("label_solver_settings") == solver_settings


def _copy(source: Path, out: Path) -> None:
    tmp = out.with_name(out.name + ".part")
    shutil.copyfile(source, tmp)
    os.replace(tmp, out)


def label_frame(atoms: Atoms, name: str, settings: dict, store: LabelStore, out: Path, frame: int, role: str,
                job_threads: int, labeller_id: str | None = None, log=print) -> str:
    """Write the label (or failure record) of one frame to ``out``; return what happened: ``"reused"``,
    ``"labelled"``, ``"failed"`` (stored) or ``"failed, transient"`` (not stored).

    A frame is computed only under its claim in the store (:meth:`LabelStore.claim`): a job that finds
    another one computing the same frame waits, then reuses that job's label.
    """
    out = Path(out)
    labeller = make_labeller(name, settings, threads=job_threads)
    solver = labeller.solver_settings() if hasattr(labeller, "solver_settings") else None
    stored = store.get(atoms)
    if stored is not None and _reusable(stored, solver):
        log(f"frame {frame}: label reused from {stored}")
        _copy(stored, out)
        return "reused"
    with store.claim(atoms, log=lambda text, **_: log(f"frame {frame}: {text}")):
        stored = store.get(atoms)
        if stored is not None and _reusable(stored, solver):  # computed by another job while this one waited
            log(f"frame {frame}: label computed meanwhile by another job: {stored}")
            _copy(stored, out)
            return "reused"
        if stored is not None:
            log(f"frame {frame}: the stored failure was made with other solver settings; labelling again with {solver}")
        return _compute(atoms, name, labeller, store, out, frame, role, job_threads, labeller_id, log)


def _compute(atoms, name, labeller, store, out, frame, role, job_threads, labeller_id, log) -> str:
    cores = getattr(labeller, "cores", job_threads)
    if cores != job_threads:
        log(f"frame {frame}: warning: the job has {job_threads} thread(s), the labeller uses {cores} core(s)")
    workdir = out.parent / f".{frame}.work"
    try:
        labelled = labeller.label(atoms, workdir=str(workdir))
        status = "labelled"
    except LabelFailure as err:
        log(f"frame {frame}: no label ({'transient' if err.transient else 'deterministic'}): {err}")
        labelled = failure_record(atoms, name, err)
        status = "failed, transient" if err.transient else "failed"
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    labelled.info.update(frame=int(frame), role=role, label_threads=int(job_threads))
    if labeller_id is not None:
        labelled.info["labeller_id"] = labeller_id
    if status == "failed, transient":
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".part")
        write(tmp, labelled, format="extxyz")
        os.replace(tmp, out)
        return status
    _copy(store.put(labelled, original=atoms), out)
    return status
