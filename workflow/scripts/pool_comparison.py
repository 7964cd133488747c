"""Pool recipes compared at equal labels (confselect.pool_comparison): pools.csv and pools.md."""
import sys
from pathlib import Path

import pandas as pd

from confselect.jobs import log_to
from confselect.pool_comparison import pool_markdown, pool_table

log_to(snakemake)
table = pool_table(pd.read_csv(snakemake.input[0]))
table.to_csv(snakemake.output.table, index=False)
text = pool_markdown(table)
Path(snakemake.output.markdown).write_text(text + "\n")
print(text, file=sys.stderr, flush=True)
