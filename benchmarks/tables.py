"""Markdown tables of the benchmarks' JSON, for the README's performance section.

    python benchmarks/bench_training.py > benchmarks/results/training.json
    python benchmarks/bench_mlmd.py > benchmarks/results/mlmd.json
    python benchmarks/tables.py --update README.md     # rewrites the tables between the README's markers

Each table sits between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` in the README and is made from
``benchmarks/results/NAME.json`` by this script alone, so the figures quoted are those of the last run.
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


TABLES = {"training": training_table, "mlmd": mlmd_table}


def update(readme: Path) -> None:
    from confselect.readme import replace_block

    text = readme.read_text()
    for name, make in TABLES.items():
        path = RESULTS / f"{name}.json"
        if path.exists():
            text = replace_block(text, f"bench:{name}", make(json.loads(path.read_text())), str(readme))
    readme.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--update", type=Path, help="rewrite the tables between the markers of this file")
    args = parser.parse_args()
    if args.update:
        update(args.update)
        return
    for name, make in TABLES.items():
        path = RESULTS / f"{name}.json"
        if path.exists():
            print(f"## {name}\n\n{make(json.loads(path.read_text()))}\n")


if __name__ == "__main__":
    main()
