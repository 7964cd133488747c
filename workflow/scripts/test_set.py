"""Gather the held-out frames' labels of a system into one extended-XYZ file, in frame order."""
import os
from pathlib import Path

from ase.io import read, write

frames = [read(path, format="extxyz") for path in snakemake.input]
out = Path(snakemake.output[0])
tmp = out.with_name(out.name + ".part")
write(tmp, frames, format="extxyz")
os.replace(tmp, out)
