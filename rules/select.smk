rule descriptors:
    """Untrained, seeded SchNet descriptors of the pool, pooled per species and standardised."""
    input:
        "results/{system}/pool/frames.extxyz",
    output:
        "results/{system}/pool/descriptors.npy",
    params:
        species=lambda w: list(config["systems"][w.system]["charges_e"]),
        settings=config["descriptors"],
    log:
        "logs/{system}/descriptors.log",
    threads: 2
    conda:
        "../envs/select.yaml"
    script:
        "../workflow/scripts/descriptors.py"


checkpoint select:
    """One ordered selection per (system, method, seed), as long as the largest training set."""
    input:
        features="results/{system}/pool/features.npz",
        descriptors="results/{system}/pool/descriptors.npy",
    output:
        "results/{system}/selection/{method}/seed{seed}.json",
    params:
        n=max(SWEEP["n_train"]),
        options=lambda w: config.get("selection", {}).get(w.method, {}),
        coverage_sizes=sorted(SWEEP["n_train"]),
    log:
        "logs/{system}/select_{method}_seed{seed}.log",
    conda:
        "../envs/select.yaml"
    script:
        "../workflow/scripts/select.py"
