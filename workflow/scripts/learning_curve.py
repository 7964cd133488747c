"""000 Fig. 2 from the summary: force RMSE and L4 error against training-set size."""
import pandas as pd

from confselect.jobs import log_to
from confselect.report import plot_learning_curve

log_to(snakemake)
plot_learning_curve(pd.read_csv(snakemake.input[0]), snakemake.output[0])
