"""003 Fig. 1 per active-learning iteration (al_calibration.png) and the loop's course (al_loop.csv)."""
from confselect.al_report import loop_table, plot_calibration
from confselect.jobs import log_to

log_to(snakemake)
table = loop_table(snakemake.input)
table.to_csv(snakemake.output.table, index=False)
plot_calibration(snakemake.input, snakemake.output.figure)
print(table.to_string(index=False), flush=True)
