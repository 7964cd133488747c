"""One pool generator's frames: classical MD (LAMMPS) or a static generator labelled by the teacher."""
from confselect.jobs import log_to
from confselect.pool import write_generator_frames

log_to(snakemake)
write_generator_frames(snakemake.params.system, snakemake.wildcards.generator, snakemake.params.settings,
                       snakemake.output[0])
