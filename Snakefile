# confselect: classical MD pool -> configuration selection -> labels -> SchNet -> ML-MD validation -> report.
# Run: snakemake --cores 2 (config/config.yaml is the embedded default; see README.md).

from pathlib import Path


# The embedded default; --configfile files are merged over it (also when run with --directory elsewhere).
configfile: Path(workflow.basedir) / "config" / "config.yaml"


include: "rules/common.smk"
include: "rules/pool.smk"
include: "rules/select.smk"
include: "rules/label.smk"
include: "rules/train.smk"
include: "rules/active_learning.smk"
include: "rules/validate.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        "results/report/summary.csv",
        "results/report/learning_curve.png",
        "results/report/rdf.png",
        "results/report/density.png",
        "results/report/verdict.md",
        "results/report/pools.md",
        "results/report/index.html",
