"""Train one committee member of an active-learning iteration (confselect.committee): SchNet, trained like
the deployed model, on all but one fold of the loop's training labels before the iteration. Device and
threads are machine settings read from the config (training.device, the rule's threads)."""
from pathlib import Path

from confselect.active_learning import al_labels
from confselect.committee import train_member
from confselect.devices import resolve_device
from confselect.jobs import log_to, read_json, write_json
from confselect.selection import make_selector

log_to(snakemake)
# CUDA asked for but absent: stop before anything is read
resolve_device(snakemake.config["training"]["device"], "training.device")
w, p = snakemake.wildcards, snakemake.params
al = make_selector("al_qbc", seed=int(w.seed), **p.al)
out = Path(snakemake.output[0])
out.mkdir(parents=True, exist_ok=True)
previous = read_json(snakemake.input.records[-1]) if snakemake.input.records else None
if previous is not None and previous.get("stopped"):
    print(f"the loop stopped at iteration {previous['stopped_at']}: member not trained", flush=True)
    write_json(out / "training.json", {"skipped": True, "stop_reason": previous["stop_reason"]})
else:
    labels = al_labels(snakemake.input.seed, snakemake.input.picks, al.n_initial, al.n_calibration)
    print(f"member {w.member} of {al.committee_size} on the folds of {len(labels.train)} training frames, "
          f"{snakemake.threads} thread(s)", flush=True)
    _, record = train_member(labels.train, int(w.member), al.committee_size, int(w.seed),
                             {**snakemake.config["training"], "threads": snakemake.threads}, out)
    write_json(out / "training.json", {"skipped": False, **record})
