"""The verdict from the summary: labels to each target with bootstrap intervals, ratios to the baseline,
paired tests, per-(method, n) statistics over seeds, the stability and time-survived figures and the cost
table."""
from pathlib import Path

import pandas as pd

from confselect.comparisons import cost_table
from confselect.jobs import log_to
from confselect.report import TIME_SURVIVED_PANELS, plot_stability
from confselect.verdict import write_verdict

log_to(snakemake)
summary = pd.read_csv(snakemake.input[0])
paths = write_verdict(summary, Path(snakemake.output.verdict).parent, snakemake.params.report)
statistics = pd.read_csv(paths["seed_statistics"])
plot_stability(statistics, snakemake.output.stability)
plot_stability(statistics, snakemake.output.time_survived, TIME_SURVIVED_PANELS)
cost_table(summary).to_csv(snakemake.output.cost, index=False)
print(Path(snakemake.output.verdict).read_text(), flush=True)
