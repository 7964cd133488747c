"""The README's result sections, regenerated from a run: nothing in them is typed by hand.

    python -m confselect.readme README.md                 # after `make demo`: results/report/
    python -m confselect.readme README.md --results DIR   # another run's report directory
    python -m confselect.readme README.md --metal metal/results/report   # after `make metal`
    python -m confselect.readme README.md --al al/results/report          # after `make active-learning`

Each generated block sits between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->``:
``summary`` (per method and size, from ``summary.csv``), ``verdict`` (``verdict.md`` without its title) and
``demo_time`` (the wall time ``make demo`` measured and wrote to ``demo_time.json``, filled only when that
run started from an empty ``results/``).
With ``--metal``, the bulk-metal demo's blocks instead: ``metal_time``, ``metal_summary`` (per pool recipe,
method and size: errors, stability and crystal observables) and ``metal_pools`` (``pools.md`` without its
title).
With ``--al``, the active-learning comparison's blocks: ``al_summary`` (per method and size: labels
used, errors, stability and what the labels and the loop cost) and ``al_verdict`` (``verdict.md`` without its
title).
``benchmarks/tables.py`` fills the ``bench:NAME`` blocks the same way (:func:`replace_block`).
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

from .intervals import mean_interval


def replace_block(text: str, tag: str, content: str, source: str = "") -> str:
    """``text`` with what lies between ``<!-- tag -->`` and ``<!-- /tag -->`` replaced by ``content``."""
    pattern = re.compile(rf"(<!-- {re.escape(tag)} -->\n).*?(<!-- /{re.escape(tag)} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{source or 'text'}: no <!-- {tag} --> ... <!-- /{tag} --> markers")
    return pattern.sub(lambda m: m.group(1) + content.rstrip("\n") + "\n" + m.group(2), text)


def _cell(values, digits: int = 3) -> str:
    m = mean_interval(values)
    if m["n_seeds"] == 0:
        return "-"
    if math.isnan(m["low"]):
        return f"{m['mean']:.{digits}g}"
    return f"{m['mean']:.{digits}g} [{m['low']:.{digits}g}, {m['high']:.{digits}g}]"


def summary_table(summary) -> str:
    """Per (system, method, n): errors (mean [95 % t-interval] over seeds), stable fractions, density errors."""
    density = sorted((c for c in summary.columns if c.startswith("density_") and c.endswith("K_rel_error_vs_teacher")),
                     key=lambda c: float(c[len("density_"):-len("K_rel_error_vs_teacher")]))
    temps = " / ".join(c[len("density_"):-len("_rel_error_vs_teacher")] for c in density)
    lines = [f"| system | method | n | seeds | force RMSE (eV/A) | force L4 (eV/A) | NVT stable | stress stable "
             f"| NPT stable | density error {temps} vs teacher (%) |", "|" + " --- |" * 10]
    for (system, method, n), group in summary.groupby(["system", "method", "n_train"], sort=True):
        k = len(group)
        nvt = int(group["stable"].astype(bool).sum())
        npt = int(group["npt_stable"].astype(bool).sum()) if "npt_stable" in group else 0
        stress = int(group["stress_stable"].fillna(False).astype(bool).sum()) if "stress_stable" in group else 0
        errors = " / ".join(_cell(100 * group[c].astype(float), 2) for c in density)
        lines.append(f"| {system} | {method} | {n} | {k} | {_cell(group['force_rmse_eV_A'])} "
                     f"| {_cell(group['force_l4_eV_A'])} | {nvt} of {k} | {stress} of {k} | {npt} of {k} | {errors} |")
    return "\n".join(lines)


def demo_time_text(record: dict, target: str = "demo", results: str = "results") -> str | None:
    """The README's sentence on how long ``make <target>`` took, from its own record (None for a rerun)."""
    if not record.get("from_empty_results"):
        return None
    minutes, seconds = divmod(int(round(record["wall_s"])), 60)
    return (f"`make {target}` itself measured **{minutes} min {seconds:02d} s** on {record['cores']} cores "
            f"({record['date']}; from an empty `{results}/`, the venv already installed; "
            f"`{results}/report/demo_time.json`).")


#: The crystal columns of the metal summary table: (column, heading), errors in % where relative.
CRYSTAL_TABLE = (("lattice_constant_rel_error", "a0 (%)"), ("bulk_modulus_rel_error", "B (%)"),
                 ("C44_rel_error", "C44 (%)"), ("phonon_rms_error_THz", "phonon RMS (THz)"),
                 ("vacancy_formation_energy_rel_error", "E_vac (%)"))


def crystal_table(summary) -> str:
    """Per (pool, method, n): force L4 error, models with every MD run stable, and the crystal observables'
    errors against the teacher (mean [95 % t-interval] over the seeds that have them)."""
    from .pool_comparison import all_stable

    summary = summary.assign(all_stable=all_stable(summary))
    heads = " | ".join(h for _, h in CRYSTAL_TABLE)
    lines = [f"| pool | method | n | force L4 (eV/A) | all MD stable | {heads} |", "|" + " --- |" * (5 + len(CRYSTAL_TABLE))]
    for (pool, method, n), group in summary.groupby(["pool", "method", "n_train"], sort=True):
        cells = [_cell((1 if c.endswith("_THz") else 100) * group[c].astype(float).dropna(), 2) for c, _ in CRYSTAL_TABLE]
        lines.append(f"| {pool} | {method} | {n} | {_cell(group['force_l4_eV_A'])} "
                     f"| {int(group['all_stable'].sum())} of {len(group)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def update_metal(readme: Path, results: Path) -> None:
    import json

    import pandas as pd

    text = readme.read_text()
    timing = results / "demo_time.json"
    sentence = demo_time_text(json.loads(timing.read_text()), "metal", "metal/results") if timing.exists() else None
    if sentence is not None:
        text = replace_block(text, "results:metal_time", sentence, str(readme))
    text = replace_block(text, "results:metal_summary", crystal_table(pd.read_csv(results / "summary.csv")), str(readme))
    pools = (results / "pools.md").read_text().split("\n", 1)[1].lstrip("\n")
    text = replace_block(text, "results:metal_pools", re.sub(r"^#+ (.*)$", r"**\1**", pools, flags=re.M), str(readme))
    readme.write_text(text)


def al_table(summary) -> str:
    """Per (method, n): labels used, force L4 error (mean [95 % t-interval] over seeds), stable NVT and NPT
    runs, labeller core-hours and, for al_qbc, the loop's own compute (committee core-hours + exploration
    hours), means over seeds."""
    from .comparisons import cost_table

    cost = cost_table(summary).set_index(["method", "n_train"])
    lines = ["| method | n | seeds | labels used | force L4 (eV/A) | NVT stable | NPT stable | labeller core-h "
             "| AL committee + exploration h |", "|" + " --- |" * 9]
    for (method, n), group in summary.groupby(["method", "n_train"], sort=True):
        k, row = len(group), cost.loc[(method, n)].iloc[0] if cost.loc[(method, n)].ndim > 1 else cost.loc[(method, n)]
        loop = float(row["al_committee_core_hours"]) + float(row["al_exploration_hours"])
        lines.append(f"| {method} | {n} | {k} | {group['n_labels'].astype(float).mean():.3g} "
                     f"| {_cell(group['force_l4_eV_A'])} | {int(group['stable'].astype(bool).sum())} of {k} "
                     f"| {int(group['npt_stable'].astype(bool).sum())} of {k} | {float(row['label_core_hours']):.3g} "
                     f"| {loop:.3g} |")
    return "\n".join(lines)


def update_al(readme: Path, results: Path) -> None:
    import pandas as pd

    text = readme.read_text()
    text = replace_block(text, "results:al_summary", al_table(pd.read_csv(results / "summary.csv")), str(readme))
    verdict = (results / "verdict.md").read_text().split("\n", 1)[1].lstrip("\n")
    text = replace_block(text, "results:al_verdict", re.sub(r"^#+ (.*)$", r"**\1**", verdict, flags=re.M),
                         str(readme))
    readme.write_text(text)


def update(readme: Path, results: Path) -> None:
    import json

    import pandas as pd

    text = readme.read_text()
    timing = results / "demo_time.json"
    sentence = demo_time_text(json.loads(timing.read_text())) if timing.exists() else None
    if sentence is None:
        print(f"{timing}: no timing of a demo from an empty results/ directory; the README's demo time is kept")
    else:
        text = replace_block(text, "results:demo_time", sentence, str(readme))
    text = replace_block(text, "results:summary", summary_table(pd.read_csv(results / "summary.csv")), str(readme))
    verdict = (results / "verdict.md").read_text().split("\n", 1)[1].lstrip("\n")
    # the README has its own headings: the verdict's become bold lines
    verdict = re.sub(r"^#+ (.*)$", r"**\1**", verdict, flags=re.M)
    text = replace_block(text, "results:verdict", verdict, str(readme))
    readme.write_text(text)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m confselect.readme", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("readme", type=Path)
    parser.add_argument("--results", type=Path, default=Path("results/report"))
    parser.add_argument("--metal", type=Path, default=None, help="the metal demo's report directory")
    parser.add_argument("--al", type=Path, default=None, help="the active-learning comparison's report directory")
    args = parser.parse_args(argv)
    if args.metal is not None:
        update_metal(args.readme, args.metal)
    elif args.al is not None:
        update_al(args.readme, args.al)
    else:
        update(args.readme, args.results)


if __name__ == "__main__":
    main()
