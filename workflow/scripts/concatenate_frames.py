"""A pool recipe's frames (or the held-out set's): its generators' files, concatenated in order."""
import sys

from confselect.jobs import log_to
from confselect.pool import concatenate, count_frames

log_to(snakemake)
concatenate(snakemake.input, snakemake.output[0])
print(f"{count_frames(snakemake.output[0])} frames from {len(snakemake.input)} generators", file=sys.stderr, flush=True)
