"""The labeller's own NVT run at the validation state point, under the models' protocol (validation.md, with
validation.labeller_md's equilibration and duration): the reference for models trained on its labels
(``_vs_labeller`` columns of the summary). Each MD step is one single point of the labeller."""
import sys
import time
from pathlib import Path

from confselect.config import labeller_settings
from confselect.jobs import log_to, read_json, write_json
from confselect.labeller_md import LabellerCalculator
from confselect.labelling import make_labeller
from confselect.pool import read_frames
from confselect.stability import StabilityThresholds
from confselect.state_point import state_point_of
from confselect.validation import judge_nvt, ml_nvt, nan_to_none

log_to(snakemake)
p = snakemake.params
name, settings = labeller_settings(snakemake.config, snakemake.wildcards.system)
md = {**p.md, **{k: p.labeller_md[k] for k in ("equilibration_fs", "duration_fs")}}
limits = StabilityThresholds.from_config(p.stability)
start = state_point_of(read_frames(snakemake.input.state_points), md["temperature_K"])
calculator = LabellerCalculator(make_labeller(name, settings, threads=snakemake.threads),
                                Path(snakemake.output[0]).parent / ".labeller_md.work")
tick = time.perf_counter()
run = ml_nvt(calculator, start, md, limits, seed=0, label=f"{name} MD")
result = judge_nvt(run.frames, run.series, start, md, p.transport, p.rdf, limits, p.charges_e, run.stop_reason,
                   reference_rdf=read_json(snakemake.input.teacher)["observables"]["rdf"])
cost = {"labeller": snakemake.wildcards.labeller, "single_points": calculator.calls,
        "labeller_wall_time_s": calculator.wall_time_s, "threads": int(snakemake.threads),
        "core_hours": calculator.wall_time_s * int(snakemake.threads) / 3600.0, "wall_s": time.perf_counter() - tick}
write_json(snakemake.output[0], nan_to_none({**result, **cost}))
print(f"{name} MD: {'stable' if result['stable'] else result['reason']}; {calculator.calls} single points, "
      f"{cost['core_hours']:.3g} core-hours", file=sys.stderr, flush=True)
