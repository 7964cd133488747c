"""Train one SchNet model on the labelled training set (failed labels skipped and counted)."""
from pathlib import Path

from confselect.cost import label_cost
from confselect.jobs import log_to, write_json
from confselect.training import SchNetTrainer, failure_record_at, labelled_frames

log_to(snakemake)
w = snakemake.wildcards
# params hold what the model is; device, threads and determinism are machine settings read from the config
trainer = SchNetTrainer(seed=int(w.seed), **{**snakemake.config["training"], "threads": snakemake.threads})
# training.device checked (and, for a deterministic CUDA training, cuBLAS set up) before any label is read
device = trainer.resolve_device()
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
        **label_cost([*frames, *(failure_record_at(name) for name in failed)]),
    },
)
