"""confselect: choose the few configurations worth a DFT label.

The package holds the logic of the workflow (selection kernels, descriptors, labellers, training,
validation metrics); the Snakemake rules and scripts only call it.
"""

__version__ = "0.1.0"
