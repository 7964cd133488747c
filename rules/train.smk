rule train:
    """SchNetPack SchNet on the energies and forces of the first n selected frames."""
    input:
        # the label batches that hold the first n frames of the selection, in selection order (al_qbc: the
        # loop's seed, calibration and pick labels at budget n, and its iteration records)
        unpack(training_labels),
    output:
        model="results/{system}/models/{pool}/{method}/n{n}/seed{seed}/model.pt",
        info="results/{system}/models/{pool}/{method}/n{n}/seed{seed}/training.json",
    params:
        # what the model is, not where it trains: a new device or thread count retrains nothing (the script
        # reads those from the config)
        training=training_params,
    threads: config["training"]["threads"]
    log:
        "logs/{system}/train_{pool}_{method}_n{n}_seed{seed}.log",
    conda:
        "../envs/train.yaml"
    script:
        "../workflow/scripts/train.py"
