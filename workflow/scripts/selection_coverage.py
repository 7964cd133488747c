"""Coverage of the pool by every swept prefix of one selection (descriptor space), and QUESTS's dataset
entropy and diversity of each prefix's atomic environments."""
import numpy as np

from confselect.dataset_entropy import quests_metrics
from confselect.jobs import log_to, read_json, write_json
from confselect.pool import read_frames
from confselect.selection.coverage import coverage

log_to(snakemake)
descriptors = np.load(snakemake.input.descriptors)
indices = np.asarray(read_json(snakemake.input.selection)["indices"])
sizes = snakemake.params.sizes
selected = read_frames(snakemake.input.pool, [int(i) for i in indices[: max(sizes)]])
quests = quests_metrics(selected, sizes, **snakemake.params.quests)
write_json(snakemake.output[0], {str(n): {**coverage(descriptors, indices[:n]), **quests[n]} for n in sizes})
