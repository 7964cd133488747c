"""results/report/index.html: the verdict first, then every figure and table of the report, in one file."""
from confselect.jobs import log_to
from confselect.report_page import write_page

log_to(snakemake)
i = snakemake.input
al_figures, al_tables = [], []
if i.al:  # al_qbc swept
    al_figures = [("Active learning: threshold calibration", i.al[0], "Per AL iteration, on the held-out calibration "
                   "labels: fraction of badly predicted frames flagged and of all frames flagged against the "
                   "disagreement threshold (003 Fig. 1); dashed: the threshold used.")]
    al_tables = [("Active learning: the loop per iteration", i.al[1])]
write_page(
    snakemake.output[0], i.verdict,
    figures=al_figures + [("Learning curves", i.learning_curve, "Force RMSE and L4 error against training-set size; line: mean "
              "over seeds, band: 95 % t-interval, markers: models (circle stable MD, square failed)."),
             ("Stability", i.stability, "Fraction of seeds with stable NVT and NPT (Wilson 95 % intervals) against "
              "training-set size."),
             ("Time survived", i.time_survived, "Median NVT time survived over seeds (order-statistic interval) "
              "against training-set size."),
             ("Density", i.density, "NPT density against temperature, models against the reference."),
             ("Radial distribution functions", i.rdf, "Partial RDFs of each method's largest training set.")],
    tables=[("Labels to target", i.verdict_csv), ("Paired comparisons", i.comparisons),
            ("Per method and size, over seeds", i.statistics), ("Density", i.density_table),
            ("Self-diffusion", i.diffusion), ("Ionic conductivity", i.conductivity),
            ("Cost per model: labels, labeller core-hours, training, ML-MD and active-learning hours", i.cost),
            *al_tables, ("Summary", i.summary)],
    more_md=[i.pools],
)
