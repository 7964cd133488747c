"""The comparison report: one summary row per model and the learning-curve figure of 000 (Fig. 2)."""

from __future__ import annotations

import re
from pathlib import Path

from .jobs import read_json
from .validation import density_errors

_MODEL_DIR = re.compile(r"(?P<system>[^/]+)/models/(?P<method>[^/]+)/n(?P<n>\d+)/seed(?P<seed>\d+)$")


def model_key(model_dir) -> dict:
    """system, method, n_train and seed of a ``results/{system}/models/{method}/n{n}/seed{seed}`` directory."""
    match = _MODEL_DIR.search(str(Path(model_dir)))
    if not match:
        raise ValueError(f"not a model directory: {model_dir}")
    d = match.groupdict()
    return {"system": d["system"], "method": d["method"], "n_train": int(d["n"]), "seed": int(d["seed"])}


def summary_row(model_dir, labeller: str, coverage_file, reference_npt: dict | None = None) -> dict:
    """Everything known about one model, flat, with units in the column names.

    ``reference_npt``: the reference's NPT densities (``runs`` of ``reference/npt.json``); with it, the
    model's ``npt.json`` adds density, its error and its relative error per temperature and ``npt_stable``
    (every NPT run went through).
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
               label_core_hours=training.get("label_core_hours", float("nan")))
    row.update({k: errors[k] for k in ("energy_rmse_eV_atom", "force_rmse_eV_A", "force_l4_eV_A", "force_max_error_eV_A")})
    row.update(stable=md["stable"], md_reason=md["reason"], time_survived_fs=md["time_survived_fs"],
               nvt_duration_fs=md.get("duration_fs"), md_wall_s=md.get("wall_s", float("nan")))
    row.update({k: (float("nan") if v is None else v) for k, v in md.get("versus_reference", {}).items()})
    if reference_npt is not None:
        npt = read_json(model_dir / "npt.json")
        runs = npt["runs"]
        row["npt_stable"] = all(run["stable"] for run in runs.values())
        row["npt_wall_s"] = npt.get("wall_s", float("nan"))
        row.update(density_errors(runs, reference_npt))
    coverage = read_json(coverage_file).get(str(row["n_train"]), {})
    for key, value in coverage.items():
        row[f"coverage_{key}"] = value
    return row


def plot_learning_curve(summary, path, title_prefix: str = "") -> None:
    """Force RMSE and L4 error against training-set size per method; circles = stable MD, squares = failed.

    Several seeds: the line follows the mean over seeds with its 95 % t-interval as a band
    (:func:`confselect.comparisons.seed_statistics`), each model is a marker.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .comparisons import seed_statistics

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
                seeds = int(group["seed"].nunique())
                ax.plot(band.index, band[f"{column}_mean"], "-", color=colour, label=f"{method} ({seeds} seeds)")
                ax.fill_between(band.index, band[f"{column}_low"], band[f"{column}_high"], color=colour, alpha=0.2,
                                linewidth=0)
                for stable, marker in ((True, "o"), (False, "s")):
                    pick = group[group["stable"] == stable]
                    ax.scatter(pick["n_train"], pick[column], marker=marker, facecolor=colour,
                               edgecolor="black", linewidth=1.2, s=45, zorder=3)
            ax.set_xscale("log", base=2)
            ax.set_xlabel("training configurations")
            ax.set_ylabel(f"{label} (eV/A)")
            ax.set_title(f"{title_prefix}{system}: {label}")
            ax.grid(alpha=0.3)
        row[0].legend(title="method: mean, 95 % band (o stable MD, s failed)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def transport_tables(model_dirs, references: dict):
    """000 Tables I and II: self-diffusion per species (10^-9 m^2/s) and ionic conductivity (S/cm) for every
    model whose ML-MD ran through, with the reference values; two DataFrames."""
    import pandas as pd

    diffusion, conductivity = [], []
    for model_dir in model_dirs:
        key = model_key(model_dir)
        obs = read_json(Path(model_dir) / "md.json").get("observables") or {}
        ref = references[key["system"]]
        for species, value in (obs.get("diffusion") or {}).items():
            r = ref["diffusion"][species]
            diffusion.append({**key, "species": species, "D_1e-9_m2_s": value["D_1e-9_m2_s"],
                              "D_1e-9_m2_s_sem": value["D_1e-9_m2_s_sem"], "D_ref_1e-9_m2_s": r["D_1e-9_m2_s"],
                              "D_ref_1e-9_m2_s_sem": r["D_1e-9_m2_s_sem"]})
        if obs.get("conductivity"):
            value, r = obs["conductivity"], ref["conductivity"]
            conductivity.append({**key, "sigma_S_cm": value["sigma_S_cm"], "sigma_S_cm_sem": value["sigma_S_cm_sem"],
                                 "sigma_NE_S_cm": value["sigma_NE_S_cm"], "sigma_ref_S_cm": r["sigma_S_cm"],
                                 "sigma_ref_S_cm_sem": r["sigma_S_cm_sem"]})
    return pd.DataFrame(diffusion), pd.DataFrame(conductivity)


def plot_rdfs(model_dirs, references: dict, path) -> None:
    """000 Fig. 4: partial RDFs of the largest training set of each method (first seed) against the reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = largest_models(model_dirs)
    systems = sorted(references)
    pairs = {s: [k for k in references[s]["rdf"] if k not in ("r", "sem")] for s in systems}
    ncols = max(len(p) for p in pairs.values())
    fig, axes = plt.subplots(len(systems), ncols, figsize=(4.2 * ncols, 3.4 * len(systems)), squeeze=False)
    for row, system in zip(axes, systems):
        ref = references[system]["rdf"]
        for ax, pair in zip(row, pairs[system]):
            ax.plot(ref["r"], ref[pair], "k-", lw=2.2, label="reference")
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
    method is shown with in the structure and density figures, as 000 shows its 32-configuration models."""
    chosen = {}
    for model_dir in model_dirs:
        key = model_key(model_dir)
        slot = (key["system"], key["method"])
        best = chosen.get(slot)
        if best is None or (key["n_train"], -key["seed"]) > (best[0]["n_train"], -best[0]["seed"]):
            chosen[slot] = (key, model_dir)
    return chosen


def density_table(model_dirs, references: dict):
    """000 Fig. 3 as a table: one row per (model, temperature) with the model's NPT density (g/cm^3), its
    standard error, whether the run was stable, and the reference's density at that temperature."""
    import pandas as pd

    rows = []
    for model_dir in model_dirs:
        key = model_key(model_dir)
        ref = references[key["system"]]["runs"]
        for t, run in read_json(Path(model_dir) / "npt.json")["runs"].items():
            rows.append({**key, "temperature_K": float(t), "stable": run["stable"],
                         "density_g_cm3": run.get("density_g_cm3"), "density_g_cm3_sem": run.get("density_g_cm3_sem"),
                         "density_ref_g_cm3": ref[t]["density_g_cm3"],
                         "density_ref_g_cm3_sem": ref[t]["density_g_cm3_sem"], "reason": run["reason"]})
    return pd.DataFrame(rows)


def plot_density(table, references: dict, path) -> None:
    """000 Fig. 3: NPT density against temperature, the reference (black) and the largest training set of
    each method (first seed); a model's failed runs are left out, so a method with no point never ran NPT."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = sorted(references)
    fig, axes = plt.subplots(1, len(systems), figsize=(5.2 * len(systems), 4.0), squeeze=False)
    for ax, system in zip(axes[0], systems):
        ref = sorted(references[system]["runs"].values(), key=lambda r: r["temperature_K"])
        ax.errorbar([r["temperature_K"] for r in ref], [r["density_g_cm3"] for r in ref],
                    yerr=[r["density_g_cm3_sem"] or 0.0 for r in ref], fmt="k*-", ms=9, capsize=3, label="reference")
        data = table[table["system"] == system] if len(table) else table
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


STABILITY_PANELS = (("nvt_stable", "fraction of seeds with stable NVT"), ("npt_stable", "fraction of seeds with stable NPT"))
TIME_SURVIVED_PANELS = (("time_survived_fs", "NVT time survived (ps), median over seeds"),)


def plot_stability(statistics, path, panels=STABILITY_PANELS) -> None:
    """Stability against training-set size per method: by default the fraction of seeds with stable NVT
    and with stable NPT (Wilson 95 % intervals as error bars); with ``TIME_SURVIVED_PANELS`` the median NVT
    time survived with its order-statistic interval (a continuous measure that separates methods where
    none survives the whole run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = sorted(statistics["system"].unique())
    fig, axes = plt.subplots(len(systems), len(panels), figsize=(5 * len(panels), 3.8 * len(systems)), squeeze=False)
    colours = dict(zip(sorted(statistics["method"].unique()), plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4))
    for row, system in zip(axes, systems):
        data = statistics[statistics["system"] == system]
        for ax, (key, label) in zip(row, panels):
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
