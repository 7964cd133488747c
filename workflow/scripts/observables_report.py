"""000 Tables I-II (self-diffusion, ionic conductivity) as CSV and Fig. 4 (RDFs vs reference)."""
from confselect.jobs import log_to, read_json
from confselect.report import plot_rdfs, transport_tables

log_to(snakemake)
references = {system: read_json(path) for system, path in zip(snakemake.params.systems, snakemake.input.references)}
diffusion, conductivity = transport_tables(snakemake.params.model_dirs, references, snakemake.params.experiments)
diffusion.to_csv(snakemake.output.diffusion, index=False)
conductivity.to_csv(snakemake.output.conductivity, index=False)
plot_rdfs(snakemake.params.model_dirs, references, snakemake.output.rdf)
