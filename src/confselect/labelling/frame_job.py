"""A label job: the labels of a batch of frames, each from the store, or computed, or a failure record; never a
failed job.

* A stored label is always reused. A stored failure record is reused only if it was made with the same
  solver settings as the labeller's now (``label_solver_settings``); otherwise the frame is computed again
  and the new label or deterministic failure replaces it.
* A deterministic failure (:class:`LabelFailure` with ``transient=False``: the SCF did not converge, CP2K
  aborted on the input) is stored like a label, so reruns do not repeat it.
* A transient failure (timeout, signal, missing launcher, unreadable output) is written to the job's output
  only: a rerun of the job (``--forcerun label``, or deleting its output) tries the frame again.
* The labeller's work directory (input, output, forces) is kept for a failed frame and removed after a label.
* A frame is computed only under its claim in the store, so two jobs never compute the same frame (two
  selections that share a frame, a rerun beside the still-running jobs of a killed driver, or two workflows
  sharing one store). A batch labels the frames nobody else is computing first and comes back to the others.

Every frame of the batch is written to the job's output, in batch order, with ``frame`` (its index in the
pool or test trajectory), ``role`` and ``label_origin`` (``computed`` by this job or ``store``) in its info.
The workflow's label rule is a thin entry point around :func:`label_batch`, so that a change here does not
make Snakemake rerun every label job (a script's modification time is one of its rerun triggers).
"""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from pathlib import Path

from ase import Atoms
from ase.io import read, write

from . import LabelFailure, failure_record, make_labeller
from .store import LabelStore


def _reusable(path: Path | None, solver_settings: str | None, frame: int, role: str) -> Atoms | None:
    """The stored entry at ``path`` as this batch's frame, if it may be reused: a label, or a failure made with
    these solver settings (or by a labeller without any); None otherwise (or if nothing is stored)."""
    if path is None:
        return None
    atoms = read(path, format="extxyz")
    info = atoms.info
    if solver_settings is not None and info.get("label_status") == "failed" \
            and info.get("label_solver_settings") != solver_settings:
        return None
    info.update(frame=int(frame), role=role, label_origin="store")
    return atoms


class BatchLabeller:
    """Label frames one by one for one label job: ``label(atoms, frame, workdir, wait)`` returns the labelled
    frame (or its failure record) and what happened: ``"reused"``, ``"labelled"``, ``"failed"`` (stored) or
    ``"failed, transient"`` (not stored), or ``(None, "claimed")`` where another job computes the frame and
    ``wait`` is False."""

    def __init__(self, name: str, settings: dict, store: LabelStore, role: str, job_threads: int,
                 labeller_id: str | None = None, log=print):
        self.name, self.store, self.role, self.job_threads = name, store, role, int(job_threads)
        self.labeller_id, self.log = labeller_id, log
        self.labeller = make_labeller(name, settings, threads=job_threads)
        self.solver = self.labeller.solver_settings() if hasattr(self.labeller, "solver_settings") else None
        cores = getattr(self.labeller, "cores", job_threads)
        if cores != job_threads:
            log(f"warning: the job has {job_threads} thread(s), the labeller uses {cores} core(s)")

    def label(self, atoms: Atoms, frame: int, workdir: Path, wait: bool = True) -> tuple[Atoms | None, str]:
        log = lambda text, **_: self.log(f"frame {frame}: {text}")  # noqa: E731 - a prefix, nothing more
        reused = _reusable(self.store.get(atoms), self.solver, frame, self.role)
        if reused is not None:
            return reused, "reused"
        with self.store.claim(atoms, log=log, wait=wait) as held:
            if not held:
                return None, "claimed"
            stored = self.store.get(atoms)
            reused = _reusable(stored, self.solver, frame, self.role)
            if reused is not None:  # computed meanwhile by another job
                log(f"label computed meanwhile by another job: {stored}")
                return reused, "reused"
            if stored is not None:
                log(f"the stored failure was made with other solver settings; labelling again with {self.solver}")
            return self._compute(atoms, frame, Path(workdir))

    def _compute(self, atoms: Atoms, frame: int, workdir: Path) -> tuple[Atoms, str]:
        try:
            labelled = self.labeller.label(atoms, workdir=str(workdir))
            status = "labelled"
        except LabelFailure as err:
            self.log(f"frame {frame}: no label ({'transient' if err.transient else 'deterministic'}): {err}")
            labelled = failure_record(atoms, self.name, err)
            status = "failed, transient" if err.transient else "failed"
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        labelled.info.update(frame=int(frame), role=self.role, label_threads=self.job_threads)
        if self.labeller_id is not None:
            labelled.info["labeller_id"] = self.labeller_id
        if status != "failed, transient":
            self.store.put(labelled, original=atoms)
        labelled.info["label_origin"] = "computed"
        return labelled, status


def label_batch(frames: dict[int, Atoms], name: str, settings: dict, store: LabelStore, out: Path, role: str,
                job_threads: int, labeller_id: str | None = None, log=print) -> Counter:
    """Write the labels (or failure records) of ``frames`` (frame index -> configuration, in batch order) to
    ``out``, one extended-XYZ file; return how many frames were reused, labelled and failed.

    Frames that another job is computing are left for last, then waited for (their label is reused)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    job = BatchLabeller(name, settings, store, role, job_threads, labeller_id, log)
    done, counts, start = {}, Counter(), time.perf_counter()
    for wait in (False, True):
        for frame, atoms in frames.items():
            if frame in done:
                continue
            labelled, status = job.label(atoms, frame, out.parent / f".{role}_{frame}.work", wait=wait)
            if labelled is None:
                log(f"frame {frame}: being labelled by another job; coming back to it")
                continue
            done[frame] = labelled
            counts[status] += 1
            log(f"label {len(done)}/{len(frames)}: frame {frame} {status}, "
                f"{time.perf_counter() - start:.0f} s elapsed")
    tmp = out.with_name(out.name + ".part")
    write(tmp, [done[frame] for frame in frames], format="extxyz")
    os.replace(tmp, out)
    return counts
