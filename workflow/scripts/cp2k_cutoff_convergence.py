"""CP2K forces and energy of one pool frame at several plane-wave cutoffs, against the highest one."""
import dataclasses
from pathlib import Path

import pandas as pd
from ase.io import read

from confselect.jobs import log_to
from confselect.labelling.cp2k import cutoff_convergence
from confselect.labelling.cp2k_settings import labeller_from_config

log_to(snakemake)
conv = snakemake.params.convergence
atoms = read(snakemake.input[0], index=conv["frame"], format="extxyz")
atoms.calc = None
labeller = labeller_from_config(snakemake.params.settings)
rows = cutoff_convergence(atoms, conv["cutoffs_Ry"], lambda c: dataclasses.replace(labeller, cutoff_Ry=c),
                          Path(snakemake.output[0]).parent / "cutoff_convergence")
table = pd.DataFrame(rows)
table["threads"] = labeller.cores  # cores of one run (ranks x threads): the cost estimate scales the wall times by it
table.to_csv(snakemake.output[0], index=False)
print(table.to_string(index=False), flush=True)
