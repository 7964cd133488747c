rule summary:
    """One row per (system, pool recipe, method, n_train, seed): errors, stability, observables, label failures."""
    input:
        training=[f"{d}/training.json" for d in model_dirs()],
        errors=[f"{d}/test_errors.json" for d in model_dirs()],
        md=[f"{d}/md.json" for d in model_dirs()],
        npt=[f"{d}/npt.json" for d in model_dirs()],
        reference_npt=[f"results/{system}/reference/npt.json" for system in SWEEP["systems"]],
        labeller_md=labeller_md_files(),
        # crystal systems: every model's crystal observables and the teacher's
        crystal=[f"{d}/crystal.json" for d in model_dirs() if d.split("/")[1] in CRYSTAL_SYSTEMS],
        reference_crystal=[f"results/{system}/reference/crystal.json" for system in CRYSTAL_SYSTEMS],
        # validation.uncertainty: every model's committee uncertainty on the held-out frames
        uncertainty=[f"{d}/uncertainty.json" for d in model_dirs()] if config["validation"]["uncertainty"]["enabled"] else [],
        coverage=[  # al_qbc labels frames of its own exploration: no pool selection to cover
            f"results/{system}/selection/{pool}/{method}/seed{seed}_coverage.json"
            for system in SWEEP["systems"]
            for pool in POOLS
            for method in SWEEP["methods"] if method != AL_METHOD
            for seed in SWEEP["seeds"]
        ],
    params:
        labellers={system: labeller_id(config, system) for system in SWEEP["systems"]},
        systems=SWEEP["systems"],
        crystal_systems=CRYSTAL_SYSTEMS,
        experiments={s: experiment_entry(s) for s in SWEEP["systems"]},
    output:
        report("results/report/summary.csv", category="Summary", caption="../workflow/report/summary.rst"),
    log:
        "logs/report/summary.log",
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/summary.py"


rule learning_curve:
    """000 Fig. 2: force RMSE and L4 error against training-set size, circles stable MD, squares failed."""
    input:
        "results/report/summary.csv",
    output:
        report("results/report/learning_curve.png", category="Learning curves", caption="../workflow/report/learning_curve.rst"),
    log:
        "logs/report/learning_curve.log",
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/learning_curve.py"


rule observables_report:
    """000 Tables I-II (self-diffusion, ionic conductivity) and Fig. 4 (RDFs of models vs the reference)."""
    input:
        md=[f"{d}/md.json" for d in model_dirs()],
        references=[f"results/{system}/reference/nvt.json" for system in SWEEP["systems"]],
    output:
        diffusion=report("results/report/diffusion.csv", category="Transport", caption="../workflow/report/diffusion.rst"),
        conductivity=report(
            "results/report/conductivity.csv", category="Transport", caption="../workflow/report/conductivity.rst"
        ),
        rdf=report("results/report/rdf.png", category="Structure", caption="../workflow/report/rdf.rst"),
    params:
        model_dirs=model_dirs(),
        systems=SWEEP["systems"],
        experiments={s: experiment_transport(s) for s in SWEEP["systems"]},
    log:
        "logs/report/observables_report.log",
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/observables_report.py"


rule density_report:
    """000 Fig. 3: NPT density against temperature, models vs the reference, as a figure and a table."""
    input:
        npt=[f"{d}/npt.json" for d in model_dirs()],
        references=[f"results/{system}/reference/npt.json" for system in SWEEP["systems"]],
    output:
        table=report("results/report/density.csv", category="Density", caption="../workflow/report/density_table.rst"),
        figure=report("results/report/density.png", category="Density", caption="../workflow/report/density.rst"),
    params:
        model_dirs=model_dirs(),
        systems=SWEEP["systems"],
        experiments={s: experiment_entry(s) for s in SWEEP["systems"]},
    log:
        "logs/report/density_report.log",
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/density_report.py"


rule verdict:
    """Labels each method needs to reach each target (bootstrap over seeds), the ratio to the baseline,
    paired tests per size, statistics over seeds per (method, n), the stability and time-survived figures and
    the cost table."""
    input:
        "results/report/summary.csv",
    output:
        verdict=report("results/report/verdict.md", category="Verdict", caption="../workflow/report/verdict.rst"),
        csv="results/report/verdict.csv",
        comparisons="results/report/comparisons.csv",
        statistics="results/report/seed_statistics.csv",
        stability=report("results/report/stability.png", category="Stability", caption="../workflow/report/stability.rst"),
        time_survived=report("results/report/time_survived.png", category="Stability",
                             caption="../workflow/report/time_survived.rst"),
        cost="results/report/cost.csv",
    params:
        report=config["report"],
    log:
        "logs/report/verdict.log",
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/verdict.py"


rule pool_comparison:
    """Which pool recipe is worth labelling: per observable and size, the recipe with the lowest mean error
    at equal labels, and where each recipe's models run stable MD (seed 001's question)."""
    input:
        "results/report/summary.csv",
    output:
        table="results/report/pools.csv",
        markdown=report("results/report/pools.md", category="Verdict", caption="../workflow/report/pools.rst"),
    log:
        "logs/report/pool_comparison.log",
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/pool_comparison.py"


rule report_page:
    """results/report/index.html: one self-contained page, the verdict first, then figures and tables."""
    input:
        verdict="results/report/verdict.md",
        verdict_csv="results/report/verdict.csv",
        comparisons="results/report/comparisons.csv",
        statistics="results/report/seed_statistics.csv",
        stability="results/report/stability.png",
        time_survived="results/report/time_survived.png",
        learning_curve="results/report/learning_curve.png",
        density="results/report/density.png",
        density_table="results/report/density.csv",
        rdf="results/report/rdf.png",
        diffusion="results/report/diffusion.csv",
        conductivity="results/report/conductivity.csv",
        summary="results/report/summary.csv",
        cost="results/report/cost.csv",
        pools="results/report/pools.md",
        # active learning (al_qbc swept): the calibration figure and the loop's course
        al=["results/report/al_calibration.png", "results/report/al_loop.csv"] if AL_SWEPT else [],
    output:
        "results/report/index.html",
    log:
        "logs/report/report_page.log",
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/report_page.py"
