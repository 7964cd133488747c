"""One ordered selection of pool frames (a prefix of length n is the training set of size n)."""
import numpy as np

from confselect.jobs import log_to, write_json
from confselect.selection import PoolFeatures, make_selector

log_to(snakemake)
pool = PoolFeatures.load(snakemake.input.features)
pool.descriptors = np.load(snakemake.input.descriptors)
w = snakemake.wildcards
selector = make_selector(w.method, seed=int(w.seed), **snakemake.params.options)
indices = selector.select(pool, snakemake.params.n)
write_json(
    snakemake.output[0],
    {"method": w.method, "seed": int(w.seed), "selector": repr(selector), "indices": indices.tolist()},
)
