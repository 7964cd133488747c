"""One ordered selection of pool frames, with how well each prefix covers the pool."""
import numpy as np

from confselect.jobs import log_to, write_json
from confselect.selection import PoolFeatures, make_selector
from confselect.selection.coverage import coverage

log_to(snakemake)
pool = PoolFeatures.load(snakemake.input.features)
pool.descriptors = np.load(snakemake.input.descriptors)
w = snakemake.wildcards
selector = make_selector(w.method, seed=int(w.seed), **snakemake.params.options)
indices = selector.select(pool, snakemake.params.n)
write_json(
    snakemake.output[0],
    {
        "method": w.method,
        "seed": int(w.seed),
        "selector": repr(selector),
        "indices": indices.tolist(),
        "coverage": {str(n): coverage(pool.descriptors, indices[:n]) for n in snakemake.params.coverage_sizes},
    },
)
