rule test_errors:
    """Energy RMSE, force RMSE and force L4 error of a model on the held-out test frames."""
    input:
        model="results/{system}/models/{pool}/{method}/n{n}/seed{seed}/model.pt",
        labels=test_set,
    output:
        "results/{system}/models/{pool}/{method}/n{n}/seed{seed}/test_errors.json",
    params:
        cutoff_A=config["training"]["cutoff_A"],
    log:
        "logs/{system}/test_errors_{pool}_{method}_n{n}_seed{seed}.log",
    conda:
        "../envs/validate.yaml"
    script:
        "../workflow/scripts/test_errors.py"


rule reference_md:
    """The teacher's NVT run at the validation state point, under the models' protocol: reference observables."""
    input:
        state_points="results/{system}/reference/state_points.extxyz",
    output:
        "results/{system}/reference/nvt.json",
    params:
        system=lambda w: system_definition(config["systems"][w.system], f"systems.{w.system}"),
        md=config["validation"]["md"],
        transport=config["validation"]["transport"],
        stability=config["validation"]["stability"],
        rdf=config["validation"]["rdf"],
    log:
        "logs/{system}/reference_md.log",
    conda:
        "../envs/pool.yaml"
    script:
        "../workflow/scripts/reference_md.py"


rule labeller_md:
    """The labeller's own NVT run at the state point (000: 10 ps of DFT-MD at 400 atoms): the reference of
    models trained on its labels. Off by default (validation.labeller_md.enabled); its planned cost is part
    of rule label_cost_estimate's output."""
    input:
        state_points="results/{system}/reference/state_points.extxyz",
        teacher="results/{system}/reference/nvt.json",
    output:
        "results/{system}/reference/labeller_md_{labeller}.json",
    params:
        labeller=lambda w: label_identity(config, w.system),
        md=config["validation"]["md"],
        labeller_md=config["validation"]["labeller_md"],
        transport=config["validation"]["transport"],
        stability=config["validation"]["stability"],
        rdf=config["validation"]["rdf"],
        charges_e=lambda w: config["systems"][w.system].get("charges_e") or {},
    threads: lambda w: labeller_cores(*labeller_settings(config, w.system))
    log:
        "logs/{system}/labeller_md_{labeller}.log",
    conda:
        "../envs/label.yaml"
    script:
        "../workflow/scripts/labeller_md.py"


rule ml_md:
    """ML-MD with a trained model, one process and one loaded calculator, every run at the reference's state
    point: the NVT run (stability verdict, time survived, RDFs and transport against the reference), the
    stress run at the pool's highest temperature, and the NPT runs at each validation temperature (stability
    and density)."""
    input:
        model="results/{system}/models/{pool}/{method}/n{n}/seed{seed}/model.pt",
        state_points="results/{system}/reference/state_points.extxyz",
        reference="results/{system}/reference/nvt.json",
    output:
        md="results/{system}/models/{pool}/{method}/n{n}/seed{seed}/md.json",
        npt="results/{system}/models/{pool}/{method}/n{n}/seed{seed}/npt.json",
    params:
        md=config["validation"]["md"],
        stress=config["validation"]["stress"],
        stress_temperature_K=stress_temperature(config["validation"], pool_top_temperature(config)),
        transport=config["validation"]["transport"],
        density=config["validation"]["density"],
        stability=config["validation"]["stability"],
        rdf=config["validation"]["rdf"],
        cutoff_A=config["training"]["cutoff_A"],
        repulsion=config["training"]["repulsion"],
        charges_e=lambda w: config["systems"][w.system].get("charges_e") or {},
    log:
        "logs/{system}/ml_md_{pool}_{method}_n{n}_seed{seed}.log",
    # validation.device is read by the script from the config: a machine setting, not a param (no rerun)
    threads: config["validation"]["threads"]
    conda:
        "../envs/validate.yaml"
    script:
        "../workflow/scripts/ml_md.py"


rule reference_npt:
    """The teacher's NPT runs at every validation temperature: reference densities (000 Fig. 3) and the
    state point (density and start frame) of every NVT run."""
    input:
        "results/{system}/test/frames.extxyz",
    output:
        npt="results/{system}/reference/npt.json",
        state_points="results/{system}/reference/state_points.extxyz",
    params:
        system=lambda w: system_definition(config["systems"][w.system], f"systems.{w.system}"),
        md={"start_frame": config["validation"]["md"]["start_frame"]},
        density=config["validation"]["density"],
        temperatures_K=state_point_temperatures(config["validation"], pool_top_temperature(config)),
        state_point=config["validation"]["state_point"],
        experiment=lambda w: experiment_entry(w.system),
        supercell=config["validation"]["supercell"],
    log:
        "logs/{system}/reference_npt.log",
    conda:
        "../envs/pool.yaml"
    script:
        "../workflow/scripts/reference_npt.py"


rule reference_crystal:
    """The teacher's crystal observables (validation.crystal): equation of state, elastic constants, phonons,
    vacancy formation energy; the exact values every model's are compared with. Crystal systems only."""
    output:
        "results/{system}/reference/crystal.json",
    params:
        system=lambda w: system_definition(config["systems"][w.system], f"systems.{w.system}"),
        crystal=config["validation"]["crystal"],
    log:
        "logs/{system}/reference_crystal.log",
    conda:
        "../envs/validate.yaml"  # the script of rule crystal_properties, which also loads models
    script:
        "../workflow/scripts/crystal_properties.py"


rule crystal_properties:
    """A model's crystal observables under the same protocol as the teacher's (rule reference_crystal)."""
    input:
        model="results/{system}/models/{pool}/{method}/n{n}/seed{seed}/model.pt",
    output:
        "results/{system}/models/{pool}/{method}/n{n}/seed{seed}/crystal.json",
    params:
        system=lambda w: system_definition(config["systems"][w.system], f"systems.{w.system}"),
        crystal=config["validation"]["crystal"],
        cutoff_A=config["training"]["cutoff_A"],
    log:
        "logs/{system}/crystal_properties_{pool}_{method}_n{n}_seed{seed}.log",
    threads: config["validation"]["threads"]
    conda:
        "../envs/validate.yaml"
    script:
        "../workflow/scripts/crystal_properties.py"


rule uncertainty:
    """A model's committee uncertainty (validation.uncertainty, off by default): K members trained like it on
    K-fold splits of its training labels, their disagreement on the held-out frames and its correlation
    with the model's own errors there."""
    input:
        unpack(training_labels),
        model="results/{system}/models/{pool}/{method}/n{n}/seed{seed}/model.pt",
        test=test_set,
    output:
        "results/{system}/models/{pool}/{method}/n{n}/seed{seed}/uncertainty.json",
    params:
        training=training_params,
        committee_size=config["validation"]["uncertainty"]["committee_size"],
        cutoff_A=config["training"]["cutoff_A"],
    threads: config["training"]["threads"]
    log:
        "logs/{system}/uncertainty_{pool}_{method}_n{n}_seed{seed}.log",
    conda:
        "../envs/validate.yaml"  # it trains like train and evaluates like test_errors
    script:
        "../workflow/scripts/uncertainty.py"
