import math

from confselect.pool_config import generator_frames
from confselect.labelling import labeller_cores
from confselect.structures import structure_atoms


rule label:
    """The labels of one batch of frames: positions [batch x B, (batch + 1) x B) of a selection (subset
    selection/<method>/seed<seed>, in selection order) or of the held-out frames (subset test), with
    B = labelling.batch_size. Each label is computed once per labeller and reused through the label store,
    also where several selections pick the same frame (docs/cluster.md, "Label jobs")."""
    input:
        unpack(label_batch_input),
    output:
        "results/{system}/labels/{labeller}/{subset}/batch{batch}.extxyz",
    params:
        # Only what changes the numbers: a new executable, launcher, thread count or time limit is no
        # reason to compute a label again (the script reads those from the config).
        labeller=lambda w: label_identity(config, w.system),
        store=config["labelling"]["store"],
        batch_size=LABEL_BATCH,
        first=lambda w: int(w.batch) * LABEL_BATCH,
        n_test=n_frames(config, "test"),
    threads: lambda w: labeller_cores(*labeller_settings(config, w.system))  # CP2K: ranks x threads
    log:
        "logs/{system}/labels/{labeller}/{subset}/batch{batch}.log",
    conda:
        "../envs/label.yaml"
    script:
        "../workflow/scripts/label.py"


rule test_set:
    """The held-out frames' labels (and failure records) of a system in one file, gathered from their label
    batches: each model's test-error job names one input. Runs on the submitting host."""
    input:
        test_labels,
    output:
        "results/{system}/labels/{labeller}/test_set.extxyz",
    log:
        "logs/{system}/test_set_{labeller}.log",
    localrule: True
    conda:
        "../envs/label.yaml"
    script:
        "../workflow/scripts/test_set.py"


rule cp2k_cutoff_convergence:
    """Label one pool frame at a series of plane-wave cutoffs; force change per element vs the highest.

    Not part of `all`: run it before a CP2K sweep, e.g.
    snakemake --cores 2 results/NaCl/cp2k_cutoff_convergence.csv
    """
    input:
        lambda w: f"results/{w.system}/pool/{next(iter(POOLS))}/frames.extxyz",  # the first pool recipe's frames
    output:
        "results/{system}/cp2k_cutoff_convergence.csv",
    params:
        settings=config["labelling"].get("cp2k", {}),
        convergence=config["labelling"]["cp2k_convergence"],
    threads: labeller_cores("cp2k", config["labelling"]["cp2k"])
    log:
        "logs/{system}/cp2k_cutoff_convergence.log",
    conda:
        "../envs/label.yaml"
    script:
        "../workflow/scripts/cp2k_cutoff_convergence.py"


rule label_cost_estimate:
    """Planned labeller core-hours of the sweep for one system, before any label job: the measured single
    point of the cutoff series at the campaign's cutoff times the number of labels the sweep can need, and
    the labeller's own MD run (validation.labeller_md, whether or not it is switched on).

    Not part of `all`: snakemake --cores 2 results/NaCl/label_cost_estimate.json (prints the estimate)
    """
    input:
        "results/{system}/cp2k_cutoff_convergence.csv",
    output:
        "results/{system}/label_cost_estimate.json",
    params:
        settings=config["labelling"].get("cp2k", {}),
        n_test=n_frames(config, "test"),
        n_pool=sum(generator_frames(g) for g in config["pool"].values()),  # every generator's frames
        n_select=n_select(config),
        n_selections=len(POOLS) * len(SWEEP["methods"]) * len(SWEEP["seeds"]),
        n_full=FULL_N or 0,  # the upper-bound arm's training set, one per seed
        n_seeds=len(SWEEP["seeds"]),
        # the labeller's own MD (validation.labeller_md): its single points at the validation system size
        n_atoms_label=lambda w: structure_atoms(config["systems"][w.system]),
        n_atoms_md=lambda w: structure_atoms(config["systems"][w.system]) * math.prod(config["validation"]["supercell"]),
        labeller_md_steps=round(sum(config["validation"]["labeller_md"][k] for k in ("equilibration_fs", "duration_fs"))
                                / config["validation"]["md"]["timestep_fs"]),
    log:
        "logs/{system}/label_cost_estimate.log",
    conda:
        "../envs/label.yaml"
    script:
        "../workflow/scripts/label_cost_estimate.py"
