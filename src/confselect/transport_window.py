"""Where a transport fit window may lie: the block length of a run and the largest fraction of it the window
may reach (:mod:`confselect.transport` fits over the window; :func:`confselect.config.check_config` checks it
when the Snakefile is parsed).  Pure arithmetic, kept apart from :mod:`confselect.transport` so that the
parse-time check does not import numpy's, ASE's and scipy's share of it.
"""

#: The upper end of the fit window may reach at most this fraction of a block's length.
MAX_WINDOW_FRACTION_OF_BLOCK = 0.5


def block_length_ps(duration_fs: float, sample_interval_fs: float, n_blocks: int) -> float:
    """Lag span of one block, ps, of a run of ``duration_fs`` sampled every ``sample_interval_fs`` (both
    ends sampled) and cut into ``n_blocks``: what :func:`confselect.transport.fit_lags` checks the window
    against."""
    frames = int(round(duration_fs / sample_interval_fs)) + 1
    return (frames // int(n_blocks) - 1) * sample_interval_fs / 1000.0
