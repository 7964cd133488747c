"""Label one frame (reusing the label store), or write a failure record if no trustworthy label exists.

The logic is confselect.labelling.frame_job.label_frame: whatever the labeller does, the job ends with a
label or a failure record for its frame, never with an error, and no other job computes the same frame.
"""
from pathlib import Path

from ase.io import read

from confselect.config import labeller_settings
from confselect.jobs import log_to
from confselect.labelling.frame_job import label_frame
from confselect.labelling.store import LabelStore

log_to(snakemake)
w = snakemake.wildcards
# params.labeller holds the physics settings only (the label's identity); the labeller also needs the
# machine settings (executable, launcher, threads, time limit), which are read from the config.
name, settings = labeller_settings(snakemake.config, w.system)
atoms = read(snakemake.input[0], index=int(w.frame), format="extxyz")
atoms.calc = None
label_frame(atoms, name, settings, LabelStore(snakemake.params.store, w.labeller), Path(snakemake.output[0]),
            int(w.frame), w.role, int(snakemake.threads), labeller_id=w.labeller,
            log=lambda text: print(text, flush=True))
