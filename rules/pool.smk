rule classical_md:
    """Classical MD of a system: the selection pool (role=pool) or the held-out test run (role=test)."""
    output:
        "results/{system}/{role}/frames.extxyz",
    params:
        system=system_definition,
        protocol=lambda w: protocol(config, w.role),
    log:
        "logs/{system}/classical_md_{role}.log",
    conda:
        "../envs/pool.yaml"
    script:
        "../workflow/scripts/classical_md.py"


rule pool_features:
    """Energies, per-atom energies, forces and times of the pool frames, for the selectors that read them."""
    input:
        "results/{system}/pool/frames.extxyz",
    output:
        "results/{system}/pool/features.npz",
    log:
        "logs/{system}/pool_features.log",
    conda:
        "../envs/pool.yaml"
    script:
        "../workflow/scripts/pool_features.py"
