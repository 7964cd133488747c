"""Train one committee member of an active-learning iteration (confselect.committee): SchNet, trained like
the deployed model, on all but one fold of the loop's training labels before the iteration. Device and
threads are machine settings read from the config (training.device, the rule's threads)."""
from pathlib import Path

from confselect.active_learning import al_labels
from confselect.committee import member_seed, member_training_indices
from confselect.jobs import log_to, read_json, write_json
from confselect.selection import make_selector
from confselect.training import SchNetTrainer

log_to(snakemake)
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
    member = int(w.member)
    rows = member_training_indices(len(labels.train), al.committee_size, int(w.seed))[member]
    trainer = SchNetTrainer(seed=member_seed(int(w.seed), member),
                            **{**snakemake.config["training"], "threads": snakemake.threads})
    device = trainer.resolve_device()
    print(f"member {member} of {al.committee_size}: {len(rows)} of {len(labels.train)} training frames on {device}",
          flush=True)
    trainer.fit([labels.train[i] for i in rows], out)
    write_json(out / "training.json", {"skipped": False, "member": member, "training_rows": rows.tolist(),
                                       "n_training_labels": len(labels.train), **trainer.record})
