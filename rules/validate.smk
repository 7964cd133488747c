rule test_errors:
    """Energy RMSE, force RMSE and force L4 error of a model on the held-out test frames."""
    input:
        model="results/{system}/models/{method}/n{n}/seed{seed}/model.pt",
        labels=test_labels,
    output:
        "results/{system}/models/{method}/n{n}/seed{seed}/test_errors.json",
    params:
        cutoff_A=config["training"]["cutoff_A"],
    log:
        "logs/{system}/test_errors_{method}_n{n}_seed{seed}.log",
    conda:
        "../envs/validate.yaml"
    script:
        "../workflow/scripts/test_errors.py"


rule reference_md:
    """The teacher's NVT run at the validation temperature: reference observables."""
    input:
        "results/{system}/test/frames.extxyz",
    output:
        "results/{system}/reference/nvt.json",
    params:
        system=system_definition,
        md=config["validation"]["md"],
        reference=config["validation"]["reference"],
        rdf=config["validation"]["rdf"],
    log:
        "logs/{system}/reference_md.log",
    conda:
        "../envs/pool.yaml"
    script:
        "../workflow/scripts/reference_md.py"


rule ml_md:
    """NVT ML-MD with a trained model: stability verdict, time survived, RDFs against the reference."""
    input:
        model="results/{system}/models/{method}/n{n}/seed{seed}/model.pt",
        frames="results/{system}/test/frames.extxyz",
        reference="results/{system}/reference/nvt.json",
    output:
        "results/{system}/models/{method}/n{n}/seed{seed}/md.json",
    params:
        md=config["validation"]["md"],
        stability=config["validation"]["stability"],
        rdf=config["validation"]["rdf"],
        cutoff_A=config["training"]["cutoff_A"],
        charges_e=lambda w: config["systems"][w.system]["charges_e"],
    log:
        "logs/{system}/ml_md_{method}_n{n}_seed{seed}.log",
    conda:
        "../envs/validate.yaml"
    script:
        "../workflow/scripts/ml_md.py"
