"""One active-learning iteration's exploration (confselect.active_learning.run_iteration): calibrate the
committee's threshold, explore, write the uncertain frames to label and the iteration's record. Device and
threads are machine settings read from the config (validation.device, the rule's threads)."""
import time
from pathlib import Path

import torch
from ase.io import write

from confselect.active_learning import al_labels, run_iteration, skipped_iteration
from confselect.calculator import SchNetCalculator
from confselect.committee import CommitteeCalculator
from confselect.devices import resolve_device
from confselect.jobs import log_to, read_json, write_json
from confselect.pool import read_frames
from confselect.selection import make_selector
from confselect.selection.al_qbc import Iteration
from confselect.stability import StabilityThresholds
from confselect.validation import nan_to_none

log_to(snakemake)
device = resolve_device(snakemake.config["validation"]["device"], "validation.device")
torch.set_num_threads(snakemake.threads)
w, p, inputs = snakemake.wildcards, snakemake.params, snakemake.input
tick = time.perf_counter()
al = make_selector("al_qbc", seed=int(w.seed), **p.al)
iteration = Iteration(**p.iteration)
previous = read_json(inputs.records[-1]) if inputs.records else None
members = [read_json(Path(d) / "training.json") for d in inputs.members]
if previous is not None and previous.get("stopped"):
    record, picks = skipped_iteration(iteration, previous), []
else:
    labels = al_labels(inputs.seed, inputs.picks, al.n_initial, al.n_calibration)
    calculators = [SchNetCalculator(Path(d) / "model.pt", cutoff_A=p.cutoff_A, device=device) for d in inputs.members]
    labelled = set(read_json(inputs.initial)["indices"][: al.start_budget])
    for path in inputs.previous_picks:
        labelled |= {int(a.info["pool_index"]) for a in read_frames(path) if "pool_index" in a.info}
    record, picks = run_iteration(al, iteration, calculators, CommitteeCalculator(calculators),
                                  labels.calibration, read_frames(inputs.pool), labelled,
                                  StabilityThresholds.from_config(p.stability), p.temperature_range_K,
                                  log=lambda text: print(text, flush=True))
    record.update(n_calibration_labelled=len(labels.calibration), n_calibration_failed=len(labels.calibration_failed),
                  n_training_labels=len(labels.train))
trained = [m for m in members if not m.get("skipped")]
record.update(committee_size=al.committee_size, committee_train_time_s=sum(m["train_time_s"] for m in trained),
              committee_train_threads=max([m["threads"] for m in trained] or [1]),
              committee_train_device=trained[0]["device"] if trained else "",
              exploration_device=device, exploration_threads=torch.get_num_threads(),
              wall_s=time.perf_counter() - tick)
Path(snakemake.output.picks).parent.mkdir(parents=True, exist_ok=True)
write(snakemake.output.picks, picks, format="extxyz")
write_json(snakemake.output.record, nan_to_none(record))
print(f"iteration {iteration.index}: {record['n_picks']} frame(s) to label"
      + (f"; the loop stops: {record['stop_reason']}" if record.get("stopped") else ""), flush=True)
