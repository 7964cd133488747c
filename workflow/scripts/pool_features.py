"""Energies, per-atom energies, forces and times of the pool frames (streamed from disk)."""
from ase.io import iread

from confselect.jobs import log_to
from confselect.pool import pool_features

log_to(snakemake)
pool_features(iread(snakemake.input[0], index=":", format="extxyz")).save(snakemake.output[0])
