"""Train one SchNet model on the labelled training set (failed labels skipped and counted)."""
from pathlib import Path

from confselect.cost import label_cost
from confselect.jobs import log_to, write_json
from confselect.active_learning import arm_training_set
from confselect.training import SchNetTrainer, failure_record_at

log_to(snakemake)
w = snakemake.wildcards
# params hold what the model is; device, threads and determinism are machine settings read from the config
trainer = SchNetTrainer(seed=int(w.seed), **{**snakemake.config["training"], "threads": snakemake.threads})
# training.device checked (and, for a deterministic CUDA training, cuBLAS set up) before any label is read
device = trainer.resolve_device()
# the first n frames of the selection; for al_qbc the loop's seed set and picks at budget n (its calibration
# labels are paid for, not trained on)
frames, failed, extra, paid = arm_training_set(snakemake.input, w.method, int(w.n),
                                               snakemake.params.training.get("al_qbc"))
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
