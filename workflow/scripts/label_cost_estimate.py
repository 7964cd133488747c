"""Planned CP2K core-hours of the sweep from the measured single point of the cutoff series."""
import pandas as pd

from confselect.cost import planned_label_cost
from confselect.labeller_md import planned_labeller_md_cost
from confselect.jobs import log_to, write_json
from confselect.labelling.cp2k_settings import labeller_from_config

log_to(snakemake)
p = snakemake.params
cutoff = labeller_from_config(p.settings).cutoff_Ry
rows = pd.read_csv(snakemake.input[0]).to_dict("records")
# fewest labels: every selection (and the upper-bound arm) picks the same frames; most: none overlap
estimate = planned_label_cost(rows, cutoff, p.n_test + max(p.n_select, p.n_full),
                              p.n_test + min(p.n_pool, p.n_select * p.n_selections + p.n_full * p.n_seeds))
estimate["labeller_md"] = planned_labeller_md_cost(estimate["core_hours_per_label"], p.n_atoms_label, p.n_atoms_md,
                                                   p.labeller_md_steps)
write_json(snakemake.output[0], estimate)
print(f"{snakemake.wildcards.system}: {estimate['core_hours_per_label']:.3g} core-hours per label at "
      f"{estimate['cutoff_Ry']:g} Ry; {estimate['n_labels_min']}-{estimate['n_labels_max']} labels: "
      f"{estimate['core_hours_min']:.3g}-{estimate['core_hours_max']:.3g} core-hours", flush=True)
md = estimate["labeller_md"]
print(f"{snakemake.wildcards.system}: labeller MD (validation.labeller_md) of {md['n_atoms']} atoms, {md['n_steps']} steps: "
      f"{md['core_hours']:.3g} core-hours (single points scaled as N^{md['scaling_exponent']:g})", flush=True)
