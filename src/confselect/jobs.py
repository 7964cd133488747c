"""Small helpers the workflow scripts share (logging, atomic writes, JSON)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


class _Tee:
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for s in self.streams:
            s.write(text)
            s.flush()

    def flush(self):
        for s in self.streams:
            s.flush()


def log_to(snakemake) -> None:
    """Send stderr to the job's log file and, unchanged, to the console (progress lines show in both)."""
    if snakemake.log:
        Path(snakemake.log[0]).parent.mkdir(parents=True, exist_ok=True)
        handle = open(snakemake.log[0], "w")
        sys.stderr = _Tee(sys.__stderr__, handle)


def write_json(path, data) -> None:
    """Write JSON atomically (temporary file + rename), so a killed job never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True, default=_plain) + "\n")
    os.replace(tmp, path)


def _plain(value):
    """numpy arrays and scalars as plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def read_json(path):
    with open(path) as handle:
        return json.load(handle)
