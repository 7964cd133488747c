"""Markdown tables of the benchmarks' JSON, for the README's performance section.

    python benchmarks/bench_training.py > benchmarks/results/training.json
    python benchmarks/bench_mlmd.py > benchmarks/results/mlmd.json
    python benchmarks/stability_figures.py zbl=results plain=/tmp/plain/results > benchmarks/results/stability.json
    python benchmarks/bench_planning.py > benchmarks/results/planning.json
    python benchmarks/tables.py --update README.md docs/validation.md   # rewrites the tables between markers

Each table sits between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` in a document and is made from
``benchmarks/results/NAME.json`` (``stability`` gives two, ``stability`` and ``stability_transition``) by this
script alone, so the figures quoted are those of the last run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def _f(value, digits=3, unit=""):
    return "n/a" if value is None else f"{value:.{digits}g}{unit}"


def training_table(data: dict) -> str:
    s = data["settings"]
    lines = [
        f"SchNet {s['n_atom_basis']} features x {s['n_interactions']} interactions, repulsion {s['repulsion']}, batch "
        f"{s['batch_size']}, {s['threads']} thread(s), {data['data']['test_frames']} test frames; both sides from the "
        "same initial weights, same frames, same steps. Target: "
        + data["sizes"][0].get("target_definition", "SchNetPack's final test force RMSE x 1.02") + ".",
        "",
        "| frames | steps | SchNetPack default: s/step, training (s), test force RMSE (eV/A) "
        "| confselect: s/step, training (s), test force RMSE (eV/A) | speed-up per step "
        "| target RMSE (eV/A) | time to target: SchNetPack / confselect (s) | **speed-up at equal test error** |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for e in data["sizes"]:
        spk, ours = e["schnetpack_default"], e["confselect"]
        lines.append(
            f"| {e['n_frames']} | {e['steps']} "
            f"| {spk['s_per_step'] * 1e3:.1f} ms, {spk['wall_s']:.0f}, {spk['final_test']['force_rmse_eV_A']:.4f} "
            f"| {ours['s_per_step'] * 1e3:.1f} ms, {ours['wall_s']:.0f}, {ours['final_test']['force_rmse_eV_A']:.4f} "
            f"| {e['ratio_per_step']:.2f}x | {e['target_force_rmse_eV_A']:.4f} "
            f"| {_f(spk['time_to_target_s'], 4)} / {_f(ours['time_to_target_s'], 4)} "
            f"| **{_f(e['ratio_vs_schnetpack_default'], 3, 'x')}** |"
        )
    return "\n".join(lines)


ENGINES = {
    "handwritten": "hand-written engine (commit {commit})",
    "ase_schnetcalculator": "SchNetCalculator + ASE integrators (the workflow's)",
    "schnetpack_md": "schnetpack.md (skin neighbour list)",
    "ase_spkcalculator": "ASE + SpkCalculator",
}


def mlmd_table(data: dict) -> str:
    """One row per (size, engine): NVT steps/s, the ratio to the hand-written engine, NVE drift, forces."""
    run = data["run"]
    lines = [
        f"NVT {run['temperature_K']:g} K, {run['timestep_fs']:g} fs, {data['machine']['threads']} torch thread; "
        f"model: {data['model']}; medians of interleaved blocks.",
        "",
        "| ions | engine | steps/s (wall) | steps/s (CPU) | vs hand-written | NVE drift (meV/atom/ps) "
        "| max force difference vs SpkCalculator (eV/A) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for size, entry in data["sizes"].items():
        for engine, label in ENGINES.items():
            speed, nve, forces = entry["speed"][engine], entry["nve"][engine], entry["forces"][engine]
            lines.append(
                f"| {size} | {label.format(commit=data['handwritten_commit'])} | {speed['steps_per_s_wall']:.0f} "
                f"| {speed['steps_per_s_cpu']:.0f} | {speed['vs_handwritten_cpu']:.2f} "
                f"| {nve['drift_meV_atom_ps']:+.3f} | {forces['max_abs_dF_eV_A']:.1e} |"
            )
    return "\n".join(lines)


CRITERIA = (
    ("max_force_eV_A", "max force (eV/A)", "max", "max_force_eV_A"),
    ("min_distance_A", "min distance (A)", "min", "min_distance_A"),
    ("conserved_drift_meV_atom_ps", "conserved drift (meV/atom/ps)", "absmax", "max_conserved_drift_meV_atom_ps"),
    ("max_temperature_drift_K", "running-mean T offset (K)", "max", "max_temperature_drift_K"),
)


def _extreme(values, how):
    values = [v for v in values if v is not None]
    if not values:
        return None
    if how == "min":
        return min(values)
    if how == "absmax":
        return max(values, key=abs)
    return max(values)


def stability_table(data: dict) -> str:
    """Per criterion: the limit, the teacher's figure in its NVT and stress runs, and the extreme figure over
    the models that passed and over those that failed (any arm), each NVT run measured over its whole length."""
    teacher = data["teacher"]
    models = data["models"]
    lines = [
        f"{data['system']}; teacher NVT {teacher['nvt']['temperature_K']:g} K ({teacher['nvt']['duration_fs'] / 1000:g} ps)"
        + (f", teacher stress {teacher['stress']['temperature_K']:g} K ({teacher['stress']['duration_fs'] / 1000:g} ps)"
           if "stress" in teacher else "")
        + f"; {len(models)} models. Extremes over runs; a failed run's figure is taken up to where it stopped.",
        "",
        "| criterion | limit | teacher NVT | teacher stress | models, stable NVT | models, failed NVT or stress |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for key, label, how, limit in CRITERIA:
        stable = [m.get(f"nvt_{key}") for m in models if m["nvt_stable"]]
        stable += [m.get(f"stress_{key}") for m in models if m.get("stress_stable")]
        failed = [m.get(f"nvt_{key}") for m in models if not m["nvt_stable"]]
        failed += [m.get(f"stress_{key}") for m in models if m.get("stress_stable") is False]
        lines.append(f"| {label} | {data['thresholds'][limit]:g} | {_f(teacher['nvt'].get(key))} "
                     f"| {_f(teacher.get('stress', {}).get(key))} | {_f(_extreme(stable, how))} "
                     f"| {_f(_extreme(failed, how))} |")
    volumes = [m["npt_max_volume_change"] for m in models]
    npt = teacher.get("npt", {})
    window = data["thresholds"].get("volume_window_fs")
    lines.append(f"| NPT volume change, {window / 1000:g} ps running mean (teacher: its NPT runs) "
                 f"| {data['thresholds']['max_volume_change']:g} "
                 f"| {_f(_extreme([r['max_volume_change'] for r in npt.values()], 'max'))} | - "
                 f"| {_f(_extreme([v for m, v in zip(models, volumes) if m['npt_stable']], 'max'))} "
                 f"| {_f(_extreme([v for m, v in zip(models, volumes) if not m['npt_stable']], 'max'))} |")
    if npt:
        lines.append(f"| NPT volume change, instantaneous (not judged) | - "
                     f"| {_f(_extreme([r['max_instantaneous_volume_change'] for r in npt.values()], 'max'))} | - | - | - |")
    return "\n".join(lines)


def _first_reason(model: dict) -> str:
    for key in ("nvt_reason", "stress_reason"):
        if model.get(key):
            return model[key].split(" at t =")[0].split(" over t =")[0]
    return "; ".join(sorted({r.split(" at t =")[0] for r in model["npt_reasons"]}))


def _all_stable(model: dict) -> bool:
    return bool(model["nvt_stable"]) and model.get("stress_stable") is not False and bool(model["npt_stable"])


def transitions(models: list[dict]) -> list[str]:
    """Per arm and method: the smallest training-set size from which every swept size runs NVT, stress and
    NPT stable (and the largest size below it that did not), or that no size did."""
    lines = []
    for arm, method in sorted({(m["arm"], m["method"]) for m in models}):
        runs = sorted((m["n_train"], _all_stable(m)) for m in models if (m["arm"], m["method"]) == (arm, method))
        failed = [n for n, ok in runs if not ok]
        stable_from = next((n for n, _ in runs if all(ok for k, ok in runs if k >= n)), None)
        if stable_from is None:
            lines.append(f"- {arm}, {method}: no size up to n = {runs[-1][0]} runs all three stable")
        elif not failed:
            lines.append(f"- {arm}, {method}: every size from n = {runs[0][0]} runs all three stable")
        else:
            lines.append(f"- {arm}, {method}: stable from n = {stable_from} on (n = {max(failed)} failed)")
    return lines


def transition_table(data: dict) -> str:
    """Per arm, method and training-set size: the NVT, stress and NPT verdicts, the NVT time survived and
    the first failure's reason: where models start to run stable MD."""
    lines = ["Where NVT, stress and NPT runs all start to be stable:", "", *transitions(data["models"]), "",
             "| arm (repulsion) | method | n | NVT | stress | NPT | NVT time survived (ps) | first failure |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    mark = {True: "stable", False: "failed", None: "-"}
    for m in sorted(data["models"], key=lambda m: (m["arm"], m["method"], m["n_train"], m["seed"])):
        lines.append(f"| {m['arm']} ({m['repulsion']}) | {m['method']} | {m['n_train']} | {mark[m['nvt_stable']]} "
                     f"| {mark[m.get('stress_stable')]} | {mark[m['npt_stable']]} "
                     f"| {m['nvt_time_survived_fs'] / 1000:.1f} of {m['nvt_duration_fs'] / 1000:g} | {_first_reason(m) or '-'} |")
    return "\n".join(lines)


def planning_table(data: dict) -> str:
    """The dry run on a fresh directory and the no-op rerun of a finished campaign, with their job counts."""
    m, load = data["machine"], data["load_average_1min"]
    return "\n".join([
        f"{data['config']}; {m['cpu']}, {m['cpu_count']} CPU(s), --cores {m['cores']}, Snakemake {m['snakemake']}, "
        f"Python {m['python']}.",
        "",
        "| case | command | wall time (s) | CPU time (s) | load average before | jobs |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| fresh directory | `snakemake -n` | {data['dry_run_s']:.1f} | {data['dry_run_cpu_s']:.1f} "
        f"| {load['dry_run']:.1f} | {data['n_jobs']} planned (the whole campaign) |",
        f"| finished campaign | `snakemake --cores {m['cores']}`: nothing to be done | {data['noop_rerun_s']:.1f} "
        f"| {data['noop_rerun_cpu_s']:.1f} | {load['noop_rerun']:.1f} "
        f"| {data['n_output_files']} outputs, {data['n_label_files']} of them label batches |",
        f"| a cluster job's re-parse | `python -m snakemake --target-jobs ... --mode remote` | "
        f"{data['job_reparse_s']:.1f} | {data['job_reparse_cpu_s']:.1f} | - | 1 (median of 3) |",
    ])


TABLES = {"training": training_table, "mlmd": mlmd_table, "stability": stability_table, "planning": planning_table}
#: Tables made from another table's JSON: name -> (source JSON, maker).
DERIVED = {"stability_transition": ("stability", transition_table)}


def update(document: Path) -> None:
    """Rewrite every table whose markers ``document`` holds (and whose JSON exists)."""
    from confselect.readme import replace_block

    text = document.read_text()
    makers = {name: (name, make) for name, make in TABLES.items()} | DERIVED
    for name, (source, make) in makers.items():
        path = RESULTS / f"{source}.json"
        if path.exists() and f"<!-- bench:{name} -->" in text:
            text = replace_block(text, f"bench:{name}", make(json.loads(path.read_text())), str(document))
    document.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--update", type=Path, nargs="+", help="rewrite the tables between the markers of these files")
    args = parser.parse_args()
    if args.update:
        for document in args.update:
            update(document)
        return
    for name, make in TABLES.items():
        path = RESULTS / f"{name}.json"
        if path.exists():
            print(f"## {name}\n\n{make(json.loads(path.read_text()))}\n")


if __name__ == "__main__":
    main()
