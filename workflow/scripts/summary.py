"""Collect one row per (system, method, n_train, seed) into results/report/summary.csv."""
from pathlib import Path

import pandas as pd

from confselect.jobs import log_to, read_json
from confselect.report import model_key, summary_row

log_to(snakemake)
reference_npt = {s: read_json(p)["runs"] for s, p in zip(snakemake.params.systems, snakemake.input.reference_npt)}
# the labeller's own MD where validation.labeller_md is on: one file per system, in sweep order
labeller_md = {s: read_json(p) for s, p in zip(snakemake.params.systems, snakemake.input.labeller_md)}
# crystal systems: the teacher's crystal observables, the reference of each model's
crystal = {s: read_json(p) for s, p in zip(snakemake.params.crystal_systems, snakemake.input.reference_crystal)}
rows = []
for info in snakemake.input.training:
    model_dir = Path(info).parent
    key = model_key(model_dir)
    coverage = f"results/{key['system']}/selection/{key['pool']}/{key['method']}/seed{key['seed']}_coverage.json"
    rows.append(summary_row(model_dir, snakemake.params.labellers[key["system"]], coverage, reference_npt[key["system"]],
                            snakemake.params.experiments[key["system"]], labeller_md.get(key["system"]),
                            crystal.get(key["system"]), uncertainty=bool(snakemake.input.uncertainty)))
summary = pd.DataFrame(rows).sort_values(["system", "pool", "method", "n_train", "seed"])
summary.to_csv(snakemake.output[0], index=False)
print(summary.to_string(index=False), flush=True)
