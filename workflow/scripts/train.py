"""Train one SchNet model on the labelled training set (failed labels skipped and counted)."""
from pathlib import Path

from confselect.cost import label_cost
from confselect.jobs import log_to, read_json, write_json
from confselect.training import SchNetTrainer, failure_record_at, labelled_frames

log_to(snakemake)
w = snakemake.wildcards
# params hold what the model is; device, threads and determinism are machine settings read from the config
trainer = SchNetTrainer(seed=int(w.seed), **{**snakemake.config["training"], "threads": snakemake.threads})
# training.device checked (and, for a deterministic CUDA training, cuBLAS set up) before any label is read
device = trainer.resolve_device()
extra, paid = {}, []  # al_qbc: the loop's columns, and labels it paid for without training on them
if w.method == "al_qbc":  # the loop's labels at budget n: seed set and picks (the calibration set held out)
    from confselect.active_learning import al_labels, al_model_record
    from confselect.selection import make_selector

    al = make_selector("al_qbc", **snakemake.params.training["al_qbc"])
    labels = al_labels(snakemake.input.seed, snakemake.input.picks, al.n_initial, al.n_calibration)
    frames, failed = labels.train, labels.train_failed
    extra = al_model_record(labels, [read_json(path) for path in snakemake.input.records])
    paid = [*labels.calibration, *(failure_record_at(name) for name in labels.calibration_failed)]
else:
    frames, failed = labelled_frames(snakemake.input.labels, first=int(w.n))  # the batches may hold more
print(f"training on {len(frames)} frames ({len(failed)} selected frames have no label) on {device}, "
      f"{snakemake.threads} thread(s)", flush=True)
trainer.fit(frames, Path(snakemake.output.model).parent)
write_json(
    snakemake.output.info,
    {
        "n_selected": int(w.n),
        "n_trained": len(frames),
        "n_label_failures": len(failed),
        "failed_labels": failed,
        **trainer.record,
        # the training frames are already read; only the (rare) failure records are read here
        **label_cost([*frames, *(failure_record_at(name) for name in failed), *paid]),
        **extra,
    },
)
