"""Energies, per-atom energies, forces and times of the pool frames."""
from confselect.jobs import log_to
from confselect.pool import pool_features, read_frames

log_to(snakemake)
pool_features(read_frames(snakemake.input[0])).save(snakemake.output[0])
