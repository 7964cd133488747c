"""Label one frame (reusing the label store), or write a failure record if no trustworthy label exists."""
from pathlib import Path

from ase.io import read

from confselect.config import labeller_settings
from confselect.jobs import log_to
from confselect.labelling.job import label_frame
from confselect.labelling.store import LabelStore

log_to(snakemake)
w = snakemake.wildcards
# params.labeller holds the physics settings only (the label's identity); the labeller also needs the
# machine settings (executable, launcher, threads, time limit), which are read from the config.
name, settings = labeller_settings(snakemake.config, w.system)
atoms = read(snakemake.input[0], index=int(w.frame), format="extxyz")
atoms.calc = None
out = Path(snakemake.output[0])
label_frame(atoms, name, settings, LabelStore(snakemake.params.store, w.labeller), out,
            workdir=out.parent / f".{w.frame}.work", threads=snakemake.threads,
            provenance={"frame": int(w.frame), "role": w.role, "labeller_id": w.labeller},
            log=lambda text, **kw: print(f"frame {w.frame}: {text}", **kw))
