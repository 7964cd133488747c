rule train:
    """SchNetPack SchNet on the energies and forces of the first n selected frames."""
    input:
        selection=selection_file,
        labels=training_labels,
    output:
        model="results/{system}/models/{method}/n{n}/seed{seed}/model.pt",
        info="results/{system}/models/{method}/n{n}/seed{seed}/training.json",
    params:
        training=config["training"],
    threads: config["training"]["threads"]
    log:
        "logs/{system}/train_{method}_n{n}_seed{seed}.log",
    conda:
        "../envs/train.yaml"
    script:
        "../workflow/scripts/train.py"
