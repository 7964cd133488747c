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
        supercell=config["validation"]["supercell"],
    log:
        "logs/{system}/reference_md.log",
    conda:
        "../envs/pool.yaml"
    script:
        "../workflow/scripts/reference_md.py"


rule ml_md:
    """ML-MD with a trained model, one process and one loaded calculator: the NVT run (stability verdict, time
    survived, RDFs and transport against the reference) and the NPT runs at each validation temperature
    (stability and density)."""
    input:
        model="results/{system}/models/{method}/n{n}/seed{seed}/model.pt",
        frames="results/{system}/test/frames.extxyz",
        reference="results/{system}/reference/nvt.json",
    output:
        md="results/{system}/models/{method}/n{n}/seed{seed}/md.json",
        npt="results/{system}/models/{method}/n{n}/seed{seed}/npt.json",
    params:
        md=config["validation"]["md"],
        density=config["validation"]["density"],
        stability=config["validation"]["stability"],
        rdf=config["validation"]["rdf"],
        cutoff_A=config["training"]["cutoff_A"],
        charges_e=lambda w: config["systems"][w.system]["charges_e"],
        supercell=config["validation"]["supercell"],
        device=config["validation"]["device"],
    log:
        "logs/{system}/ml_md_{method}_n{n}_seed{seed}.log",
    conda:
        "../envs/validate.yaml"
    script:
        "../workflow/scripts/ml_md.py"


rule reference_npt:
    """The teacher's NPT runs at each validation temperature: reference densities (000 Fig. 3)."""
    input:
        "results/{system}/test/frames.extxyz",
    output:
        "results/{system}/reference/npt.json",
    params:
        system=system_definition,
        md={"start_frame": config["validation"]["md"]["start_frame"]},
        density=config["validation"]["density"],
        supercell=config["validation"]["supercell"],
    log:
        "logs/{system}/reference_npt.log",
    conda:
        "../envs/pool.yaml"
    script:
        "../workflow/scripts/reference_npt.py"
