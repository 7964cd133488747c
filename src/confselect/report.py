"""The comparison report: one summary row per model and the learning-curve figure of 000 (Fig. 2)."""

from __future__ import annotations

import re
from pathlib import Path

from .jobs import read_json
from .validation import compare_to_reference, density_errors

_MODEL_DIR = re.compile(
    r"(?P<system>[^/]+)/models/(?P<pool>[^/]+)/(?P<method>[^/]+)/n(?P<n>\d+)/seed(?P<seed>\d+)$")


def model_key(model_dir) -> dict:
    """system, pool recipe, method, n_train and seed of a
    ``results/{system}/models/{pool}/{method}/n{n}/seed{seed}`` directory."""
    match = _MODEL_DIR.search(str(Path(model_dir)))
    if not match:
        raise ValueError(f"not a model directory: {model_dir}")
    d = match.groupdict()
    return {"system": d["system"], "pool": d["pool"], "method": d["method"], "n_train": int(d["n"]),
            "seed": int(d["seed"])}


def summary_row(model_dir, labeller: str, coverage_file, reference_npt: dict | None = None,
                experiment: dict | None = None, labeller_md: dict | None = None,
                reference_crystal: dict | None = None, uncertainty: bool = False) -> dict:
    """Everything known about one model, flat, with units in the column names.

    ``reference_npt``: the reference's NPT densities (``runs`` of ``reference/npt.json``); with it, the
    model's ``npt.json`` adds density, its error and its relative error against the teacher per temperature
    and ``npt_stable`` (every NPT run went through).  ``experiment``: the system's experimental entry
    (:mod:`confselect.experiment`); with it, ``..._rel_error_vs_experiment`` columns for density at each
    temperature and for diffusion and conductivity at the NVT temperature, where experiment has a value.
    ``labeller_md``: the labeller's own NVT run (``reference/labeller_md.json``); with it, the RDF, diffusion
    and conductivity errors ``..._vs_labeller`` of a model whose NVT run went through.
    ``reference_crystal``: the teacher's crystal observables (``reference/crystal.json``) of a crystal
    system; with it, the model's ``crystal.json`` gives the relative errors of the lattice constant, bulk
    modulus, C11, C12, C44 and vacancy formation energy, the phonon RMS error (THz) and, per NPT
    temperature, the relative error of the lattice parameter. Those columns are blank (NaN) for a liquid.
    ``uncertainty``: add the model's committee uncertainty (``uncertainty.json``) as ``uncertainty_...`` columns.
    """
    model_dir = Path(model_dir)
    row = model_key(model_dir)
    row["labeller"] = labeller
    training = read_json(model_dir / "training.json")
    errors = read_json(model_dir / "test_errors.json")
    md = read_json(model_dir / "md.json")
    row.update(n_trained=training["n_trained"], n_label_failures=training["n_label_failures"],
               train_steps=training.get("steps"), train_time_s=training.get("train_time_s"),
               train_device=training.get("device"), train_threads=training.get("threads"),
               repulsion=training.get("repulsion"),
               label_wall_time_s=training.get("label_wall_time_s", float("nan")),
               label_core_hours=training.get("label_core_hours", float("nan")),
               # labels paid for: the selected frames, or for al_qbc every seed, calibration and picked frame
               n_labels=training.get("n_labels", row["n_train"]))
    row.update({k: v for k, v in training.items() if k.startswith("al_")})
    row.update({k: errors[k] for k in ("energy_rmse_eV_atom", "force_rmse_eV_A", "force_l4_eV_A", "force_max_error_eV_A")})
    state = md.get("state_point", {})
    row.update(stable=md["stable"], md_reason=md["reason"], time_survived_fs=md["time_survived_fs"],
               nvt_duration_fs=md.get("duration_fs"), nvt_equilibration_fs=md.get("equilibration_fs"),
               nvt_temperature_K=state.get("temperature_K"), nvt_density_g_cm3=state.get("density_g_cm3"),
               nvt_density_source=state.get("density_source"), n_atoms_md=md.get("n_atoms"),
               md_wall_s=md.get("wall_s", float("nan")))
    figures = md.get("stability_figures") or {}
    row.update({f"nvt_{k}": (float("nan") if v is None else v) for k, v in figures.items()})
    if "stress" in md:
        stress = md["stress"]
        row.update(stress_stable=stress["stable"], stress_reason=stress["reason"],
                   stress_time_survived_fs=stress["time_survived_fs"],
                   stress_temperature_K=stress["state_point"]["temperature_K"],
                   stress_duration_fs=stress["duration_fs"])
    row.update({k: (float("nan") if v is None else v) for k, v in md.get("versus_reference", {}).items()})
    if labeller_md is not None and labeller_md.get("observables", {}).get("rdf") and md.get("observables", {}).get("rdf"):
        versus = compare_to_reference(md["observables"], labeller_md["observables"], against="labeller")
        row.update({k: v for k, v in versus.items() if k.endswith("_vs_labeller")})
    if reference_npt is not None:
        npt = read_json(model_dir / "npt.json")
        runs = npt["runs"]
        row["npt_stable"] = all(run["stable"] for run in runs.values())
        row["npt_wall_s"] = npt.get("wall_s", float("nan"))
        row.update(density_errors(runs, reference_npt))
        if experiment:
            row.update(experiment_errors(row, runs, md, experiment))
    row.update(crystal_errors(model_dir, reference_crystal, row))
    if uncertainty:  # validation.uncertainty: the committee's disagreement beside the errors it should track
        committee = read_json(model_dir / "uncertainty.json")
        row.update({f"uncertainty_{k}": (float("nan") if v is None else v) for k, v in committee.items()
                    if k.startswith("mean_") or k.endswith("_spearman") or k in ("committee_size", "committee_train_time_s")})
    # the upper-bound arm has no coverage file: it covers the whole pool by construction
    coverage = read_json(coverage_file).get(str(row["n_train"]), {}) if Path(coverage_file).exists() else {}
    for key, value in coverage.items():
        row[f"coverage_{key}"] = value
    return row


def crystal_errors(model_dir, reference: dict | None, row: dict) -> dict:
    """The crystal columns of a summary row (:data:`confselect.crystal.CRYSTAL_COLUMNS`), NaN for a liquid:
    errors of the model's ``crystal.json`` against the teacher's, and the NPT lattice parameter's relative
    error per temperature, (rho_teacher / rho_model)^(1/3) - 1 (same atoms, isotropic cell)."""
    import math

    from .crystal import CRYSTAL_COLUMNS, relative_errors

    out = dict.fromkeys(CRYSTAL_COLUMNS, math.nan)
    if reference is None:
        return out
    model = read_json(Path(model_dir) / "crystal.json")
    out.update(relative_errors(model, reference))
    out["crystal_reason"] = (model.get("skipped") or {}).get("eos", "")
    for column, value in list(row.items()):
        if column.startswith("density_") and column.endswith("K_rel_error_vs_teacher"):
            temperature = column[len("density_"):-len("K_rel_error_vs_teacher")]
            out[f"lattice_constant_{temperature}K_rel_error"] = (1.0 + value) ** (-1.0 / 3.0) - 1.0
    return out


def experiment_errors(row: dict, npt_runs: dict, md: dict, experiment: dict) -> dict:
    """Relative errors of a model against experiment: density per NPT temperature, and D per species and
    Einstein-Helfand conductivity at the NVT state point (NaN where the model has no value)."""
    import math

    from .experiment import transport_at, value_at

    out = {}
    if "density_g_cm3" in experiment:
        for key, run in npt_runs.items():
            exp = value_at(experiment["density_g_cm3"], float(key))["value"]
            rho = run.get("density_g_cm3") if run.get("stable") else None
            out[f"density_{float(key):g}K_rel_error_vs_experiment"] = (
                math.nan if rho is None else (rho - exp) / exp)
    temperature = (md.get("state_point") or {}).get("temperature_K")
    if temperature is None:
        return out
    columns = {"conductivity_S_cm": "sigma_S_cm"}
    for quantity, exp in transport_at(experiment, temperature).items():
        column = columns.get(quantity, quantity)
        value = row.get(column, math.nan)
        value = math.nan if value is None else float(value)
        name = "sigma" if quantity == "conductivity_S_cm" else quantity.replace("_1e-9_m2_s", "")
        out[f"{name}_rel_error_vs_experiment"] = (value - exp["value"]) / exp["value"]
    return out


def plot_learning_curve(summary, path, title_prefix: str = "") -> None:
    """Force RMSE and L4 error against training-set size per method; circles = stable MD, squares = failed.

    Several seeds: the line follows the mean over seeds with its 95 % t-interval as a band
    (:func:`confselect.comparisons.seed_statistics`), each model is a marker.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .comparisons import arms, seed_statistics

    summary = arms(summary)
    if "n_labels" not in summary:  # a summary from before labels were counted: one label per frame
        summary = summary.assign(n_labels=summary["n_train"])
    statistics = seed_statistics(summary)
    systems = sorted(summary["system"].unique())
    fig, axes = plt.subplots(len(systems), 2, figsize=(10, 4 * len(systems)), squeeze=False)
    colours = dict(zip(sorted(summary["method"].unique()), plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4))
    for row, system in zip(axes, systems):
        data = summary[summary["system"] == system]
        for ax, column, label in zip(row, ("force_rmse_eV_A", "force_l4_eV_A"), ("force RMSE", "force L4 error")):
            for method, group in data.groupby("method"):
                colour = colours[method]
                band = statistics[(statistics["system"] == system) & (statistics["method"] == method)]
                band = band.groupby("n_train")[[f"{column}_mean", f"{column}_low", f"{column}_high"]].mean()
                # x: labels paid for, mean over seeds (the budget n, or fewer where an AL loop stopped early)
                x = group.groupby("n_train")["n_labels"].mean().reindex(band.index)
                seeds = int(group["seed"].nunique())
                ax.plot(x, band[f"{column}_mean"], "-", color=colour, label=f"{method} ({seeds} seeds)")
                ax.fill_between(x, band[f"{column}_low"], band[f"{column}_high"], color=colour, alpha=0.2,
                                linewidth=0)
                for stable, marker in ((True, "o"), (False, "s")):
                    pick = group[group["stable"] == stable]
                    ax.scatter(pick["n_labels"], pick[column], marker=marker, facecolor=colour,
                               edgecolor="black", linewidth=1.2, s=45, zorder=3)
            ax.set_xscale("log", base=2)
            ax.set_xlabel("labels (al_qbc: seed + calibration + picks)")
            ax.set_ylabel(f"{label} (eV/A)")
            ax.set_title(f"{title_prefix}{system}: {label}")
            ax.grid(alpha=0.3)
        row[0].legend(title="method: mean, 95 % band (o stable MD, s failed)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def transport_tables(model_dirs, references: dict, experiments: dict | None = None):
    """000 Tables I and II: self-diffusion per species (10^-9 m^2/s) and ionic conductivity (S/cm) for every
    model whose ML-MD ran through, with the fit window (ps), the teacher's values from the same protocol and,
    where shipped, experiment (``experiments``: system -> :func:`confselect.experiment.transport_at` at the
    NVT temperature); two DataFrames, every reference column named for its reference."""
    import pandas as pd

    diffusion, conductivity = [], []
    for model_dir in model_dirs:
        key = model_key(model_dir)
        obs = read_json(Path(model_dir) / "md.json").get("observables") or {}
        ref = references[key["system"]]["observables"]
        experiment = (experiments or {}).get(key["system"]) or {}
        for species, value in (obs.get("diffusion") or {}).items():
            r = ref["diffusion"][species]
            exp = experiment.get(f"D_{species}_1e-9_m2_s", {})
            diffusion.append({**key, "species": species, "fit_window_ps": _window_text(value),
                              "msd_exponent": value.get("msd_exponent"), "D_1e-9_m2_s": value["D_1e-9_m2_s"],
                              "D_1e-9_m2_s_sem": value["D_1e-9_m2_s_sem"], "D_teacher_1e-9_m2_s": r["D_1e-9_m2_s"],
                              "D_teacher_1e-9_m2_s_sem": r["D_1e-9_m2_s_sem"],
                              "D_experiment_1e-9_m2_s": exp.get("value"),
                              "D_experiment_1e-9_m2_s_uncertainty": exp.get("uncertainty"),
                              "experiment_source": exp.get("source")})
        if obs.get("conductivity"):
            value, r = obs["conductivity"], ref["conductivity"]
            exp = experiment.get("conductivity_S_cm", {})
            conductivity.append({**key, "fit_window_ps": _window_text(value), "sigma_S_cm": value["sigma_S_cm"],
                                 "sigma_S_cm_sem": value["sigma_S_cm_sem"], "sigma_NE_S_cm": value["sigma_NE_S_cm"],
                                 "sigma_NE_S_cm_sem": value["sigma_NE_S_cm_sem"],
                                 "sigma_teacher_S_cm": r["sigma_S_cm"], "sigma_teacher_S_cm_sem": r["sigma_S_cm_sem"],
                                 "sigma_NE_teacher_S_cm": r["sigma_NE_S_cm"],
                                 "sigma_experiment_S_cm": exp.get("value"),
                                 "sigma_experiment_S_cm_uncertainty": exp.get("uncertainty"),
                                 "experiment_source": exp.get("source")})
    return pd.DataFrame(diffusion), pd.DataFrame(conductivity)


def _window_text(value: dict) -> str:
    """The fit window of a transport result as text, ps."""
    window = value.get("fit_window_ps")
    return f"{window[0]:g}-{window[1]:g}" if window else ""


def plot_rdfs(model_dirs, references: dict, path) -> None:
    """000 Fig. 4: partial RDFs of the largest training set of each method (first seed) against the reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = largest_models(model_dirs)
    systems = sorted(references)
    pairs = {s: [k for k in references[s]["observables"]["rdf"] if k not in ("r", "sem")] for s in systems}
    ncols = max(len(p) for p in pairs.values())
    fig, axes = plt.subplots(len(systems), ncols, figsize=(4.2 * ncols, 3.4 * len(systems)), squeeze=False)
    for row, system in zip(axes, systems):
        ref = references[system]["observables"]["rdf"]
        for ax, pair in zip(row, pairs[system]):
            ax.plot(ref["r"], ref[pair], "k-", lw=2.2, label="teacher")
            for (s, method), (key, model_dir) in sorted(chosen.items()):
                if s != system:
                    continue
                rdf = (read_json(Path(model_dir) / "md.json").get("observables") or {}).get("rdf")
                if rdf:
                    ax.plot(rdf["r"], rdf[pair], lw=1.2, label=f"{method} (n={key['n_train']})")
            ax.set_xlabel("r (A)")
            ax.set_ylabel(f"g_{pair}(r)")
            ax.set_title(f"{system}: {pair}")
        row[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def largest_models(model_dirs) -> dict:
    """(system, method) -> (key, model_dir) of the largest training set (lowest seed on ties): the model each
    method is shown with in the structure and density figures, as 000 shows its 32-configuration models.
    With several pool recipes, each (pool, method) arm is its own entry, named ``<method> (<pool>)``."""
    chosen = {}
    keys = [model_key(model_dir) for model_dir in model_dirs]
    several_pools = len({key["pool"] for key in keys}) > 1
    for key, model_dir in zip(keys, model_dirs):
        slot = (key["system"], f"{key['method']} ({key['pool']})" if several_pools else key["method"])
        best = chosen.get(slot)
        if best is None or (key["n_train"], -key["seed"]) > (best[0]["n_train"], -best[0]["seed"]):
            chosen[slot] = (key, model_dir)
    return chosen


def density_table(model_dirs, references: dict, experiments: dict | None = None):
    """000 Fig. 3 as a table: one row per (model, temperature) with the model's NPT density (g/cm^3), its
    standard error, whether the run was stable, the teacher's density at that temperature and, where the
    system has an entry (``experiments``: system -> :mod:`confselect.experiment` entry), experiment's."""
    import pandas as pd

    from .experiment import value_at

    rows = []
    for model_dir in model_dirs:
        key = model_key(model_dir)
        ref = references[key["system"]]["runs"]
        entry = (experiments or {}).get(key["system"]) or {}
        for t, run in read_json(Path(model_dir) / "npt.json")["runs"].items():
            exp = value_at(entry["density_g_cm3"], float(t)) if "density_g_cm3" in entry else {}
            rows.append({**key, "temperature_K": float(t), "stable": run["stable"],
                         "density_g_cm3": run.get("density_g_cm3"), "density_g_cm3_sem": run.get("density_g_cm3_sem"),
                         "density_teacher_g_cm3": ref[t]["density_g_cm3"],
                         "density_teacher_g_cm3_sem": ref[t]["density_g_cm3_sem"],
                         "density_experiment_g_cm3": exp.get("value"),
                         "density_experiment_g_cm3_uncertainty": exp.get("uncertainty"),
                         "experiment_source": exp.get("source"), "reason": run["reason"]})
    return pd.DataFrame(rows)


def plot_density(table, references: dict, path, experiments: dict | None = None) -> None:
    """000 Fig. 3: NPT density against temperature, the teacher (black stars), experiment where shipped
    (black dots with the published uncertainty, over the correlation's measured range) and the largest
    training set of each method (first seed); a model's failed runs are left out, so a method with no point
    never ran NPT."""
    from .comparisons import arms
    from .experiment import value_at

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = sorted(references)
    fig, axes = plt.subplots(1, len(systems), figsize=(5.2 * len(systems), 4.0), squeeze=False)
    for ax, system in zip(axes[0], systems):
        ref = sorted(references[system]["runs"].values(), key=lambda r: r["temperature_K"])
        ax.errorbar([r["temperature_K"] for r in ref], [r["density_g_cm3"] for r in ref],
                    yerr=[r["density_g_cm3_sem"] or 0.0 for r in ref], fmt="k*-", ms=9, capsize=3, label="teacher")
        entry = (experiments or {}).get(system) or {}
        if "density_g_cm3" in entry:
            values = [value_at(entry["density_g_cm3"], r["temperature_K"]) for r in ref]
            ax.errorbar([r["temperature_K"] for r in ref], [v["value"] for v in values],
                        yerr=[v["uncertainty"] if v["uncertainty"] == v["uncertainty"] else 0.0 for v in values],
                        fmt="ko", mfc="none", capsize=3,
                        label="experiment" + ("" if all(v["in_range"] for v in values) else " (partly extrapolated)"))
        data = arms(table[table["system"] == system]) if len(table) else table
        if len(data):
            largest = data.groupby("method")["n_train"].transform("max")
            first_seed = data.groupby(["method", "n_train"])["seed"].transform("min")
            data = data[(data["n_train"] == largest) & (data["seed"] == first_seed)]
            for i, (method, group) in enumerate(sorted(data.groupby("method"), key=lambda kv: kv[0])):
                ok = group[group["stable"]].sort_values("temperature_K")
                # small horizontal offsets keep overlapping error bars readable
                ax.errorbar(ok["temperature_K"] + 6.0 * (i - len(data["method"].unique()) / 2), ok["density_g_cm3"],
                            yerr=ok["density_g_cm3_sem"].fillna(0.0), fmt="x", ms=7, capsize=2,
                            label=f"{method} (n={int(group['n_train'].iloc[0])}, {len(ok)}/{len(group)} stable)")
        ax.set_xlabel("temperature (K)")
        ax.set_ylabel("density (g/cm$^3$)")
        ax.set_title(f"{system}: NPT density")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


STABILITY_PANELS = (("nvt_stable", "fraction of seeds with stable NVT"),
                    ("stress_stable", "fraction of seeds with a stable stress run"),
                    ("npt_stable", "fraction of seeds with stable NPT"))
TIME_SURVIVED_PANELS = (("time_survived_fs", "NVT time survived (ps), median over seeds"),)


def plot_stability(statistics, path, panels=STABILITY_PANELS) -> None:
    """Stability against training-set size per method: by default the fraction of seeds with stable NVT
    and with stable NPT (Wilson 95 % intervals as error bars); with ``TIME_SURVIVED_PANELS`` the median NVT
    time survived with its order-statistic interval (a continuous measure that separates methods where
    none survives the whole run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .comparisons import arms

    statistics = arms(statistics)
    systems = sorted(statistics["system"].unique())
    fig, axes = plt.subplots(len(systems), len(panels), figsize=(5 * len(panels), 3.8 * len(systems)), squeeze=False)
    colours = dict(zip(sorted(statistics["method"].unique()), plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4))
    for row, system in zip(axes, systems):
        data = statistics[statistics["system"] == system]
        for ax, (key, label) in zip(row, panels):
            if f"{key}_fraction" not in data and key != "time_survived_fs":
                ax.set_visible(False)
                continue
            for i, (method, group) in enumerate(data.groupby("method", sort=True)):
                group = group.sort_values("n_train")
                x = group["n_train"] * 1.04 ** (i - 0.5 * (len(colours) - 1))  # offsets keep bars apart
                if key == "time_survived_fs":
                    y, low, high = (group[f"{key}_{s}"] / 1000.0 for s in ("median", "low", "high"))
                else:
                    y, low, high = group[f"{key}_fraction"], group[f"{key}_low"], group[f"{key}_high"]
                ax.errorbar(x, y, yerr=[y - low, high - y], fmt="o-", capsize=3, color=colours[method],
                            label=f"{method} ({int(group['n_seeds'].max())} seeds)")
            ax.set_xscale("log", base=2)
            ax.set_xlabel("training configurations")
            ax.set_ylabel(label)
            ax.set_title(f"{system}: {label}")
            ax.grid(alpha=0.3)
        row[0].legend(fontsize=8, title="95 % intervals")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
