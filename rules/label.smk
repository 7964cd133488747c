def _check_labeller(wildcards):
    expected = labeller_id(config, wildcards.system)
    if wildcards.labeller != expected:
        raise WorkflowError(
            f"labels under {wildcards.labeller} requested, but systems.{wildcards.system} is labelled by {expected}"
        )
    return f"results/{wildcards.system}/{wildcards.role}/frames.extxyz"


rule label:
    """One reference calculation per unique frame and labeller (reused through the label store)."""
    input:
        _check_labeller,
    output:
        "results/{system}/labels/{labeller}/{role}/{frame}.extxyz",
    params:
        labeller=lambda w: labeller_settings(config, w.system),
        store=config["labelling"]["store"],
    log:
        "logs/{system}/labels/{labeller}/{role}_{frame}.log",
    conda:
        "../envs/label.yaml"
    script:
        "../workflow/scripts/label.py"
