rule generate_frames:
    """One generator's frames (pool.<generator>, or the held-out set's version of it): classical MD over a
    temperature ramp, or a static generator (volumes, strains, rattles, normal modes) labelled by the
    teacher. Pool recipes share their generators' files."""
    output:
        "results/{system}/frames/{role}/{generator}.extxyz",
    params:
        system=lambda w: system_definition(config["systems"][w.system], f"systems.{w.system}"),
        settings=lambda w: generator_settings(w.role, w.generator),
    log:
        "logs/{system}/generate_frames_{role}_{generator}.log",
    conda:
        "../envs/pool.yaml"
    script:
        "../workflow/scripts/generate_frames.py"


rule pool_frames:
    """A pool recipe (sweep.pools): the union of its generators' frames, in recipe order."""
    input:
        lambda w: [f"results/{w.system}/frames/pool/{name}.extxyz" for name in recipe_generators(w.pool)],
    output:
        "results/{system}/pool/{pool}/frames.extxyz",
    log:
        "logs/{system}/pool_frames_{pool}.log",
    localrule: True
    conda:
        "../envs/pool.yaml"
    script:
        "../workflow/scripts/concatenate_frames.py"


rule test_frames:
    """The held-out frames: every test-set generator's frames (test.generators), concatenated."""
    input:
        lambda w: [f"results/{w.system}/frames/test/{name}.extxyz" for name in TEST_GENERATORS],
    output:
        "results/{system}/test/frames.extxyz",
    log:
        "logs/{system}/test_frames.log",
    localrule: True
    conda:
        "../envs/pool.yaml"
    script:
        "../workflow/scripts/concatenate_frames.py"


rule pool_features:
    """Energies, per-atom energies, forces and times of the pool frames, for the selectors that read them."""
    input:
        "results/{system}/pool/{pool}/frames.extxyz",
    output:
        "results/{system}/pool/{pool}/features.npz",
    log:
        "logs/{system}/pool_features_{pool}.log",
    conda:
        "../envs/pool.yaml"
    script:
        "../workflow/scripts/pool_features.py"
