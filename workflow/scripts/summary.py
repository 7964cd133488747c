"""Collect one row per (system, method, n_train, seed) into results/report/summary.csv."""
from pathlib import Path

import pandas as pd

from confselect.jobs import log_to
from confselect.report import model_key, summary_row

log_to(snakemake)
rows = []
for info in snakemake.input.training:
    model_dir = Path(info).parent
    key = model_key(model_dir)
    selection = f"results/{key['system']}/selection/{key['method']}/seed{key['seed']}.json"
    rows.append(summary_row(model_dir, snakemake.params.labellers[key["system"]], selection))
summary = pd.DataFrame(rows).sort_values(["system", "method", "n_train", "seed"])
summary.to_csv(snakemake.output[0], index=False)
print(summary.to_string(index=False), flush=True)
