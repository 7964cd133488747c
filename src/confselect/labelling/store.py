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

    python -m confselect.labelling.store_import SOURCE [SOURCE ...] --configfile CONFIG --system NAME

which checks every file before it enters the store (:mod:`confselect.labelling.store_import`).

Two jobs may ask for the same frame at once: a rerun started while the jobs of a killed run still run on
the cluster, or two workflows sharing one store. A job computes a frame only under its claim
(:meth:`LabelStore.claim`), a lock file beside the entry; a second job waits for the first one's label
instead of computing it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import threading
import time
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


#: A claim not touched for this long belongs to a job that is gone (s); the holder touches it every tenth.
STALE_AFTER_S = 600.0


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
        """Store ``labelled`` under the key of ``original`` (default: of ``labelled`` itself).

        A stored label is never replaced (the stored path is returned); a stored failure record is.
        """
        from ase.io import read, write

        path = self.path(original if original is not None else labelled)
        if path.exists() and read(path, format="extxyz").info.get("label_status") != "failed":
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
        write(tmp, labelled, format="extxyz")
        os.replace(tmp, path)
        return path

    @contextlib.contextmanager
    def claim(self, atoms, stale_after_s: float = STALE_AFTER_S, poll_s: float = 5.0, log=print, wait: bool = True):
        """Hold the right to compute ``atoms``'s label (yields True); wait while another job holds it, or with
        ``wait=False`` yield False at once.

        The claim is a lock file beside the entry, created exclusively (``O_CREAT | O_EXCL``, atomic on local
        file systems and on NFS v3 and later) and touched every ``stale_after_s / 10`` s while held. A claim
        is taken over when its holder is gone: a process of this host that no longer exists, or a lock not
        touched for ``stale_after_s`` (a job killed on another node). Callers check :meth:`get` again once
        the claim is held: the job they waited for may have stored the label.
        """
        lock = self.path(atoms).with_suffix(".lock")
        lock.parent.mkdir(parents=True, exist_ok=True)
        owner = {"host": socket.gethostname(), "pid": os.getpid(), "slurm_job_id": os.environ.get("SLURM_JOB_ID")}
        waited_since, next_note = None, 0.0
        while True:
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = _read_owner(lock)
                if _holder_gone(lock, holder, stale_after_s):
                    _remove_stale(lock, holder)
                    continue
                if not wait:
                    yield False
                    return
                now = time.time()
                waited_since = waited_since or now
                if now >= next_note:
                    log(f"waiting for {lock.stem[:12]}: being labelled by {holder} ({now - waited_since:.0f} s)", flush=True)
                    next_note = now + 60.0
                time.sleep(poll_s)
                continue
            with os.fdopen(fd, "w") as handle:
                json.dump(owner, handle)
            stop = threading.Event()
            beat = threading.Thread(target=_heartbeat, args=(lock, stop, stale_after_s / 10.0), daemon=True)
            beat.start()
            try:
                yield True
            finally:
                stop.set()
                beat.join()
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(lock)
            return


def _read_owner(lock: Path) -> dict:
    try:
        return json.loads(lock.read_text() or "{}")
    except (OSError, ValueError):
        return {}  # being written right now, or just removed


def _holder_gone(lock: Path, holder: dict, stale_after_s: float) -> bool:
    if holder.get("host") == socket.gethostname() and holder.get("pid"):
        try:
            os.kill(int(holder["pid"]), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
    try:
        return time.time() - lock.stat().st_mtime > stale_after_s
    except FileNotFoundError:
        return False


def _remove_stale(lock: Path, holder: dict) -> None:
    """Move a stale claim aside, unless another waiter replaced it with a live one in the meantime."""
    aside = lock.with_name(f"{lock.name}.stale.{os.getpid()}")
    try:
        os.rename(lock, aside)
    except FileNotFoundError:
        return
    if _read_owner(aside) != holder:  # not the claim judged stale: put it back if the place is free
        with contextlib.suppress(FileExistsError):
            os.link(aside, lock)
    os.unlink(aside)


def _heartbeat(lock: Path, stop: threading.Event, every_s: float) -> None:
    while not stop.wait(every_s):
        with contextlib.suppress(FileNotFoundError):
            os.utime(lock)


