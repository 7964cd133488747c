"""CP2K forces and energy of one pool frame at several plane-wave cutoffs, against the highest one."""
from pathlib import Path

import pandas as pd
from ase.io import read

from confselect.jobs import log_to
from confselect.labelling.cp2k import CP2KLabeller, cutoff_convergence

log_to(snakemake)
conv = snakemake.params.convergence
atoms = read(snakemake.input[0], index=conv["frame"], format="extxyz")
atoms.calc = None
settings = {k: v for k, v in snakemake.params.settings.items() if k != "cutoff_Ry"}


def make_labeller(cutoff_Ry):
    return CP2KLabeller(threads=snakemake.threads, cutoff_Ry=cutoff_Ry, **settings)


rows = cutoff_convergence(atoms, conv["cutoffs_Ry"], make_labeller, Path(snakemake.output[0]).parent / "cutoff_convergence")
table = pd.DataFrame(rows)
table["threads"] = snakemake.threads  # the cost estimate scales the wall times by it
table.to_csv(snakemake.output[0], index=False)
print(table.to_string(index=False), flush=True)
