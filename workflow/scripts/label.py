"""Label one frame (reusing the label store), or write a failure record if no trustworthy label exists."""
import os
import shutil
from pathlib import Path

from ase.io import read, write

from confselect.config import labeller_settings
from confselect.jobs import log_to
from confselect.labelling import LabelFailure, failure_record, make_labeller
from confselect.labelling.store import LabelStore

log_to(snakemake)
w = snakemake.wildcards
# params.labeller holds the physics settings only (the label's identity); the labeller also needs the
# machine settings (executable, launcher, threads, time limit), which are read from the config.
name, settings = labeller_settings(snakemake.config, w.system)
atoms = read(snakemake.input[0], index=int(w.frame), format="extxyz")
atoms.calc = None
store = LabelStore(snakemake.params.store, w.labeller)
out = Path(snakemake.output[0])
stored = store.get(atoms)
if stored is None:
    labeller = make_labeller(name, settings, threads=snakemake.threads)
    try:
        labelled = labeller.label(atoms, workdir=str(out.parent / f".{w.frame}.work"))
    except LabelFailure as err:
        print(f"frame {w.frame}: no label ({err})", flush=True)
        labelled = failure_record(atoms, name, err)
    labelled.info.update(frame=int(w.frame), role=w.role, label_threads=int(snakemake.threads), labeller_id=w.labeller)
    stored = store.put(labelled, original=atoms)
else:
    print(f"frame {w.frame}: label reused from {stored}", flush=True)
tmp = out.with_name(out.name + ".part")
shutil.copyfile(stored, tmp)
os.replace(tmp, out)
