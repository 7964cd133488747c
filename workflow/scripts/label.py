"""Label one batch of frames (reusing the label store): a label or a failure record for every frame, never a
failed job.

The batch is the frames at positions [batch x B, (batch + 1) x B) of a selection (pool frames, in selection
order) or of the held-out trajectory, B = labelling.batch_size. The logic is
confselect.labelling.frame_job.label_batch.
"""
import sys
from pathlib import Path

from confselect.config import labeller_settings
from confselect.jobs import log_to, read_json
from confselect.labelling.frame_job import label_batch
from confselect.labelling.store import LabelStore
from confselect.pool import count_frames, read_frames

log_to(snakemake)
w, p = snakemake.wildcards, snakemake.params
# params.labeller holds the physics settings only (the label's identity); the labeller also needs the
# machine settings (executable, launcher, threads, time limit), which are read from the config.
name, settings = labeller_settings(snakemake.config, w.system)
if "selection" in snakemake.input.keys():
    indices = read_json(snakemake.input.selection)["indices"][p.first : p.first + p.batch_size]
elif w.subset.startswith("al/"):  # an active-learning iteration's picks, in order (there may be fewer than planned)
    indices = list(range(p.first, min(p.first + p.batch_size, count_frames(snakemake.input.frames))))
else:  # the held-out frames, in order
    indices = list(range(p.first, min(p.first + p.batch_size, p.n_test)))
frames = {int(i): atoms for i, atoms in zip(indices, read_frames(snakemake.input.frames, indices))}
for atoms in frames.values():
    atoms.calc = None  # the classical MD's energies and forces are not a label
counts = label_batch(frames, name, settings, LabelStore(p.store, w.labeller), Path(snakemake.output[0]),
                     w.subset.split("/")[0].replace("selection", "pool"), int(snakemake.threads), labeller_id=w.labeller,
                     log=lambda text: print(text, file=sys.stderr, flush=True))  # progress: the job's log
print(f"batch {w.batch} of {w.subset}: {dict(counts)}", file=sys.stderr, flush=True)
