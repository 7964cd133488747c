"""One pool generator's frames: classical MD (LAMMPS) or a static generator labelled by the teacher."""
from confselect.jobs import log_to
from confselect.pool import write_generator_frames

log_to(snakemake)
# the system as configured (potential files by path); params.system is its identity (files by content)
write_generator_frames(snakemake.config["systems"][snakemake.wildcards.system], snakemake.wildcards.generator, snakemake.params.settings,
                       snakemake.output[0])
