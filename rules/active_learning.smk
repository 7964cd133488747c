# Active learning by query by committee (al_qbc; confselect.active_learning). Each iteration's files are
# explicit outputs under results/{system}/al/{pool}/seed{seed}/iter{i}/, so a changed AL knob (its params)
# reruns its iterations and the AL arm's models, and nothing else.


rule al_committee:
    """One committee member of an AL iteration: SchNet trained like the deployed model on all but one fold
    of the labels the loop holds before the iteration (003: K members on a K-fold split). Where the loop
    has stopped before this iteration, the member is not trained and its record says why."""
    input:
        unpack(al_before),
    output:
        directory("results/{system}/al/{pool}/seed{seed}/iter{iteration}/member{member}"),
    params:
        training=without_machine_settings(config["training"], "training"),
        al=AL_OPTIONS,
    threads: config["training"]["threads"]
    log:
        "logs/{system}/al_committee_{pool}_seed{seed}_iter{iteration}_member{member}.log",
    conda:
        "../envs/train.yaml"
    script:
        "../workflow/scripts/al_committee.py"


rule al_explore:
    """Calibrate the committee's threshold on the held-out calibration labels, explore with ML-MD driven by
    the committee mean (or rank the pool), and write the uncertain frames to label (picks.extxyz) with the
    iteration's record (exploration.json: calibration curve, trajectories, stop reason, cost)."""
    input:
        unpack(al_before),
        members=lambda w: [f"{al_dir(w)}/iter{w.iteration}/member{k}" for k in range(AL.committee_size)],
        pool="results/{system}/pool/{pool}/frames.extxyz",
        previous_picks=lambda w: [f"{al_dir(w)}/iter{k}/picks.extxyz" for k in range(1, int(w.iteration))],
        initial=lambda w: f"results/{w.system}/selection/{w.pool}/{AL.initial}/seed{w.seed}.json",
    output:
        record="results/{system}/al/{pool}/seed{seed}/iter{iteration}/exploration.json",
        picks="results/{system}/al/{pool}/seed{seed}/iter{iteration}/picks.extxyz",
    params:
        al=AL_OPTIONS,
        iteration=lambda w: al_iteration(w).__dict__,
        temperature_range_K=pool_temperature_range(config),
        stability=config["validation"]["stability"],
        cutoff_A=config["training"]["cutoff_A"],
    threads: config["validation"]["threads"]
    log:
        "logs/{system}/al_explore_{pool}_seed{seed}_iter{iteration}.log",
    conda:
        "../envs/validate.yaml"
    script:
        "../workflow/scripts/al_explore.py"


rule al_calibration:
    """003 Fig. 1 per AL iteration: the fraction of badly predicted calibration frames flagged, and of all
    frames, against the threshold; the disagreement-error correlation; the loop's course (al_loop.csv)."""
    input:
        [f"results/{system}/al/{pool}/seed{seed}/iter{it.index}/exploration.json"
         for system in SWEEP["systems"] for pool in POOLS for seed in SWEEP["seeds"] for it in AL_SCHEDULE],
    output:
        figure=report("results/report/al_calibration.png", category="Active learning",
                      caption="../workflow/report/al_calibration.rst"),
        table="results/report/al_loop.csv",
    log:
        "logs/report/al_calibration.log",
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/al_calibration.py"
