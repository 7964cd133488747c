"""Gather the held-out frames' labels of a system (their label batches) into one extended-XYZ file, in frame order."""
import os
from pathlib import Path

from ase.io import read, write

frames = [atoms for path in snakemake.input for atoms in read(path, index=":", format="extxyz")]
out = Path(snakemake.output[0])
tmp = out.with_name(out.name + ".part")
write(tmp, frames, format="extxyz")
os.replace(tmp, out)
