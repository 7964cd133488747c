"""What the stability criteria measure on the teacher and on trained models: the figures that justify each
threshold (docs/validation.md) and where models start to run stable MD.

    python benchmarks/stability_figures.py zbl=results plain=/tmp/plain/results > benchmarks/results/stability.json
    python benchmarks/tables.py --update docs/validation.md

Each ``ARM=DIR`` names a finished workflow's results directory (the demo with the ZBL wall, the same demo with
``training.repulsion: none``...).  For the first system of each, the teacher's own NVT run (reference/nvt.json)
is read, and the teacher is run once more at the stress state point (LAMMPS, same length as the models'
stress run) so that both of the models' NVT tests have a teacher figure.  Every model's figures and verdicts
come from its md.json and npt.json.  Prints one JSON document.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

FIGURES = ("max_force_eV_A", "min_distance_A", "conserved_drift_meV_atom_ps", "max_temperature_drift_K")


def teacher_stress_figures(results: Path, system: str, stress: dict) -> dict:
    """The teacher's NVT at the stress state point, judged like a model's stress run."""
    import yaml

    from confselect.classical import run_classical_nvt
    from confselect.config import SCHEMA, section_defaults
    from confselect.pool import read_frames
    from confselect.stability import StabilityThresholds
    from confselect.state_point import state_point_of
    from confselect.validation import judge_nvt, series_from_frames

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text())
    definition = config["systems"][system]
    start = state_point_of(read_frames(results / system / "reference" / "state_points.extxyz"),
                           stress["state_point"]["temperature_K"])
    md = stress["protocol"]
    protocol = {**md, "temperature_K": stress["state_point"]["temperature_K"], "equilibration_fs": 0.0,
                "duration_fs": stress["duration_fs"]}
    frames = []
    run_classical_nvt(definition, start,
                      protocol["temperature_K"], md["timestep_fs"], protocol["duration_fs"], md["thermostat_damping_fs"],
                      md["sample_interval_fs"], seed=2, on_frame=frames.append)
    limits = StabilityThresholds.from_config(section_defaults(SCHEMA, "validation", "stability"))
    result = judge_nvt(frames, series_from_frames(frames), start, protocol, {}, {}, limits, {}, observables=False)
    return {"stable": result["stable"], "reason": result["reason"], "temperature_K": protocol["temperature_K"],
            "duration_fs": protocol["duration_fs"], **result["stability_figures"]}


def teacher_npt_figures(results: Path, system: str) -> dict:
    """The teacher's NPT run at each temperature of the density scan from its state point, run and judged as a
    model's NPT run (the reference NPT job itself starts from the ramp's last frame, so its volume change
    measures equilibration, not stability): the barostat's own volume swing at this system size."""
    import yaml

    from confselect.classical import run_classical_npt
    from confselect.config import SCHEMA, section_defaults
    from confselect.pool import read_frames
    from confselect.stability import StabilityThresholds, stability_verdict
    from confselect.state_point import state_point_of
    from confselect.validation import series_from_frames

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text())
    definition = config["systems"][system]
    d = config["validation"]["density"]
    limits = StabilityThresholds.from_config(section_defaults(SCHEMA, "validation", "stability"))
    points = read_frames(results / system / "reference" / "state_points.extxyz")
    out = {}
    for temperature in d["temperatures_K"]:
        start, frames = state_point_of(points, temperature), []
        run_classical_npt(definition, start,
                          temperature, d["pressure_bar"], d["timestep_fs"], d["duration_fs"], d["thermostat_damping_fs"],
                          d["barostat_damping_fs"], d["sample_interval_fs"], seed=3, on_frame=frames.append)
        s = series_from_frames(frames)
        verdict = stability_verdict(s["time_fs"], s["temperature_K"], s["conserved_eV"], s["max_force_eV_A"],
                                    s["min_distance_A"], len(start), temperature, limits, volume_A3=s["volume_A3"])
        swing = float(np.max(np.abs(s["volume_A3"] / s["volume_A3"][0] - 1.0)))
        out[f"{temperature:g}"] = {"stable": verdict.stable, "reason": verdict.reason,
                                   "max_instantaneous_volume_change": swing, **verdict.figures}
    return out


def model_rows(results: Path, arm: str) -> list[dict]:
    from confselect.report import model_key

    rows = []
    for md_file in sorted(results.glob("*/models/*/*/n*/seed*/md.json")):
        md = json.loads(md_file.read_text())
        npt = json.loads((md_file.parent / "npt.json").read_text())
        training = json.loads((md_file.parent / "training.json").read_text())
        row = {**model_key(md_file.parent), "arm": arm, "repulsion": training.get("repulsion"),
               "nvt_stable": md["stable"], "nvt_reason": md["reason"], "nvt_time_survived_fs": md["time_survived_fs"],
               "nvt_duration_fs": md["duration_fs"] + md["equilibration_fs"],
               **{f"nvt_{k}": md["stability_figures"].get(k) for k in FIGURES}}
        if "stress" in md:
            s = md["stress"]
            row.update(stress_stable=s["stable"], stress_reason=s["reason"], stress_time_survived_fs=s["time_survived_fs"],
                       **{f"stress_{k}": s["stability_figures"].get(k) for k in FIGURES})
        row["npt_stable"] = all(r["stable"] for r in npt["runs"].values())
        row["npt_reasons"] = [r["reason"] for r in npt["runs"].values() if r["reason"]]
        row["npt_max_volume_change"] = max((r["stability_figures"].get("max_volume_change") or 0.0)
                                           for r in npt["runs"].values())
        rows.append(row)
    return rows


def main(argv=None) -> None:
    arms = [a.split("=", 1) for a in (argv if argv is not None else sys.argv[1:])]
    if not arms:
        raise SystemExit(__doc__)
    out = {"teacher": {}, "models": []}
    for arm, directory in arms:
        results = Path(directory)
        out["models"] += model_rows(results, arm)
    first = Path(arms[0][1])
    system = sorted(p.parent.parent.name for p in first.glob("*/reference/nvt.json"))[0]
    reference = json.loads((first / system / "reference" / "nvt.json").read_text())
    out["teacher"]["nvt"] = {"stable": reference["stable"], "reason": reference["reason"],
                             "temperature_K": reference["state_point"]["temperature_K"],
                             "duration_fs": reference["duration_fs"] + reference["equilibration_fs"],
                             "pressure_bar": reference.get("pressure_bar"),
                             "pressure_bar_sem": reference.get("pressure_bar_sem"), **reference["stability_figures"]}
    stress = next((json.loads(p.read_text())["stress"] for p in first.glob(f"{system}/models/*/*/n*/seed*/md.json")), None)
    if stress is not None:
        out["teacher"]["stress"] = teacher_stress_figures(first, system, stress)
    out["teacher"]["npt"] = teacher_npt_figures(first, system)
    out["system"] = system
    out["thresholds"] = reference["thresholds"]
    json.dump(out, sys.stdout, indent=1, default=float)
    print()


if __name__ == "__main__":
    main()
