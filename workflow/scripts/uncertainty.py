"""A model's committee uncertainty (confselect.committee.model_uncertainty): K members trained like the model
on K-fold splits of its training labels, evaluated with it on the held-out frames. Device and threads are
machine settings read from the config (training.device, the rule's threads)."""
import tempfile
import time

from confselect.active_learning import arm_training_set
from confselect.calculator import SchNetCalculator
from confselect.committee import model_uncertainty, train_member
from confselect.devices import resolve_device
from confselect.jobs import log_to, write_json
from confselect.training import labelled_frames
from confselect.validation import nan_to_none

log_to(snakemake)
w, p = snakemake.wildcards, snakemake.params
device = resolve_device(snakemake.config["training"]["device"], "training.device")
frames, _, _, _ = arm_training_set(snakemake.input, w.method, int(w.n), p.training.get("al_qbc"))
training = {**snakemake.config["training"], "threads": snakemake.threads}
tick, members = time.perf_counter(), []
with tempfile.TemporaryDirectory() as workdir:
    for k in range(p.committee_size):
        print(f"committee member {k + 1}/{p.committee_size} on the folds of {len(frames)} frames", flush=True)
        model, _ = train_member(frames, k, p.committee_size, int(w.seed), training, f"{workdir}/member{k}")
        members.append(SchNetCalculator(model, cutoff_A=p.cutoff_A, device=device))
train_s = time.perf_counter() - tick
test, _ = labelled_frames(snakemake.input.test)
result = model_uncertainty(members, SchNetCalculator(snakemake.input.model, cutoff_A=p.cutoff_A, device=device), test)
write_json(snakemake.output[0], nan_to_none({**result, "committee_train_time_s": train_s, "device": device,
                                             "threads": snakemake.threads}))
print(result, flush=True)
