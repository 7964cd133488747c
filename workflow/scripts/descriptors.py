"""Untrained SchNet descriptors of the pool frames (pooled per species, standardised), streamed from disk.

Device and threads are machine settings, read from the config rather than the rule's params, so that moving
the job to another device plans no rerun."""
import numpy as np
from ase.io import iread

from confselect.descriptors import SchNetDescriptor, standardise
from confselect.devices import resolve_device
from confselect.jobs import log_to
from confselect.pool import count_frames

log_to(snakemake)
device = resolve_device(snakemake.config["descriptors"]["device"], "descriptors.device")  # before any work
descriptor = SchNetDescriptor(snakemake.params.species, threads=snakemake.threads, device=device,
                              **snakemake.params.settings)
print(f"descriptors on {device}, {snakemake.threads} thread(s)", flush=True)
raw = descriptor.transform(
    iread(snakemake.input[0], index=":", format="extxyz"),
    n_frames=count_frames(snakemake.input[0]),
    progress_label="descriptors",
)
with open(snakemake.output[0], "wb") as handle:
    np.save(handle, standardise(raw))
