"""One ordered selection of pool frames (a prefix of length n is the training set of size n).

``selection.device`` and ``selection.threads`` go to the selectors that run torch (those whose class takes
them: rnd, classical_qbc); a CUDA request where none is visible stops such a job before the pool is read.  They are
machine settings, read from the config rather than the rule's params, so that changing them plans no rerun."""
import inspect

import numpy as np

from confselect.jobs import log_to, write_json
from confselect.selection import METHODS, PoolFeatures, make_selector

log_to(snakemake)
w = snakemake.wildcards
machine = {}
accepts = inspect.signature(METHODS[w.method]).parameters
if "device" in accepts:
    from confselect.devices import resolve_device

    machine["device"] = resolve_device(snakemake.config["selection"]["device"], "selection.device")
if "threads" in accepts:
    machine["threads"] = snakemake.threads
print(f"select {w.method}: {machine or 'CPU (numpy), no torch device'}", flush=True)
selector = make_selector(w.method, seed=int(w.seed), **snakemake.params.options, **machine)
pool = PoolFeatures.load(snakemake.input.features)
pool.descriptors = np.load(snakemake.input.descriptors)
indices = selector.select(pool, snakemake.params.n)
write_json(
    snakemake.output[0],
    {"method": w.method, "seed": int(w.seed), "selector": repr(selector), "indices": indices.tolist()},
)
