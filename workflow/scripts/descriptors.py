"""Untrained SchNet descriptors of the pool frames (pooled per species, standardised), streamed from disk."""
import numpy as np
from ase.io import iread

from confselect.descriptors import SchNetDescriptor, standardise
from confselect.jobs import log_to
from confselect.pool import count_frames

log_to(snakemake)
descriptor = SchNetDescriptor(snakemake.params.species, threads=snakemake.threads, **snakemake.params.settings)
raw = descriptor.transform(
    iread(snakemake.input[0], index=":", format="extxyz"),
    n_frames=count_frames(snakemake.input[0]),
    progress_label="descriptors",
)
with open(snakemake.output[0], "wb") as handle:
    np.save(handle, standardise(raw))
