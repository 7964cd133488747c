"""Coverage of the pool by every swept prefix of one selection (descriptor space)."""
import numpy as np

from confselect.jobs import log_to, read_json, write_json
from confselect.selection.coverage import coverage

log_to(snakemake)
descriptors = np.load(snakemake.input.descriptors)
indices = np.asarray(read_json(snakemake.input.selection)["indices"])
write_json(snakemake.output[0], {str(n): coverage(descriptors, indices[:n]) for n in snakemake.params.sizes})
