"""000 Fig. 3 (density vs temperature, models vs reference) as a figure and a CSV table."""
from confselect.jobs import log_to, read_json
from confselect.report import density_table, plot_density

log_to(snakemake)
references = {system: read_json(path) for system, path in zip(snakemake.params.systems, snakemake.input.references)}
table = density_table(snakemake.params.model_dirs, references, snakemake.params.experiments)
table.to_csv(snakemake.output.table, index=False)
plot_density(table, references, snakemake.output.figure, snakemake.params.experiments)
print(table.to_string(index=False), flush=True)
