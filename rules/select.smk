# Device and threads are machine settings: they set the rules' threads and the scripts read the device from
# the config, but neither is a param, so moving a job to another device or width plans no rerun.
MACHINE_KEYS = ("device", "threads")


rule descriptors:
    """Untrained, seeded SchNet descriptors of the pool, pooled per species and standardised."""
    input:
        "results/{system}/pool/{pool}/frames.extxyz",
    output:
        "results/{system}/pool/{pool}/descriptors.npy",
    params:
        species=lambda w: list(config["systems"][w.system]["species"]),
        settings={k: v for k, v in config["descriptors"].items() if k not in MACHINE_KEYS},
    log:
        "logs/{system}/descriptors_{pool}.log",
    threads: config["descriptors"]["threads"]
    conda:
        "../envs/select.yaml"
    script:
        "../workflow/scripts/descriptors.py"


rule select:
    """One ordered selection per (system, method, seed), sweep.n_select long (default: the largest size)."""
    input:
        features="results/{system}/pool/{pool}/features.npz",
        descriptors="results/{system}/pool/{pool}/descriptors.npy",
    output:
        "results/{system}/selection/{pool}/{method}/seed{seed}.json",
    params:
        n=selection_length,
        options=lambda w: config.get("selection", {}).get(w.method, {}),
    log:
        "logs/{system}/select_{pool}_{method}_seed{seed}.log",
    threads: config["selection"]["threads"]
    conda:
        "../envs/select.yaml"
    script:
        "../workflow/scripts/select.py"


rule coverage:
    """How well each swept prefix of a selection covers the pool in descriptor space.

    A rule of its own, so that a new training-set size recomputes coverage without re-running the
    selection checkpoint (and with it everything downstream).  The script is not called coverage.py: numba
    (under QUESTS) imports the `coverage` package, which a script of that name would shadow."""
    input:
        selection="results/{system}/selection/{pool}/{method}/seed{seed}.json",
        descriptors="results/{system}/pool/{pool}/descriptors.npy",
        pool="results/{system}/pool/{pool}/frames.extxyz",
    output:
        "results/{system}/selection/{pool}/{method}/seed{seed}_coverage.json",
    params:
        sizes=sorted(SWEEP["n_train"]),
        quests=config["coverage"]["quests"],
    log:
        "logs/{system}/coverage_{pool}_{method}_seed{seed}.log",
    conda:
        "../envs/select.yaml"
    script:
        "../workflow/scripts/selection_coverage.py"
