"""Classical MD (LAMMPS) of the pool or the held-out test trajectory."""
from confselect.jobs import log_to
from confselect.pool import write_md_trajectory

log_to(snakemake)
p = snakemake.params.protocol
write_md_trajectory(snakemake.params.system, p, p["seed"], snakemake.output[0])
