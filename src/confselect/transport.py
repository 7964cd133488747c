"""Transport coefficients of an MD trajectory: self-diffusion (Einstein) and ionic conductivity
(Einstein-Helfand beside Nernst-Einstein), each with a block-average uncertainty.

The fit window is a lag-time window in ps, the same for every trajectory it is applied to (the workflow
takes it from ``validation.transport.fit_window_ps`` for models and reference alike), never a fraction of a
run's length: two runs of different lengths are fitted over the same physical times, and the window is
written into every result (``fit_window_ps``).  The window must lie in the diffusive regime; as a check the
result carries ``msd_exponent``, the slope of log MSD against log t over the window (1 when diffusive, below
1 when still ballistic or caged), from the same blocks.

Uncertainties come from independent blocks: the trajectory (after equilibration, which the caller drops) is
cut into ``n_blocks`` contiguous blocks, the MSD of each block is fitted over the window, and the spread of
the block values gives the standard error.  The window's upper end may be at most half a block, so every
fitted lag averages over at least half the block's time origins, and blocks much longer than the window are
close to independent.  A longer trajectory gives longer blocks with more origins each, so the error shrinks
with the trajectory length as it should; a short one gives few origins and a large, honest error.

Why not kinisi.  kinisi (Bayesian regression with the MSD covariance) was evaluated on a 20 ps, 64-ion
teacher trajectory of molten NaCl (docs/design.md, "Transport uncertainties"); see there for the figures and
why the block estimate is kept.

Positions may be wrapped into the cell; the cell may change slowly (NPT).  Units are ASE's: A, fs, e.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from ase import Atoms, units
from scipy import constants

from .observables import _block_slices, _check_frames, _mean_and_sem, _species
from .transport_window import MAX_WINDOW_FRACTION_OF_BLOCK

#: 1 A^2/fs expressed in 10^-9 m^2/s (the unit of self-diffusion tables): 1e-20 m^2 / 1e-15 s = 1e-5 m^2/s.
A2_PER_FS_IN_1E9_M2_PER_S = 1e-20 / 1e-15 / 1e-9

#: 1 e^2 A^2 / (A^3 eV fs) expressed in S/cm.  e^2/eV = e/V (coulomb per volt = farad), so the unit is
#: e [C] / (V * 1e-10 m * 1e-15 s) = e * 1e25 S/m = e * 1e23 S/cm, about 1.602e4 S/cm.
E2_PER_A_EV_FS_IN_S_PER_CM = constants.e / (1e-10 * 1e-15) / 100.0


def unwrap(frames: Sequence[Atoms]) -> np.ndarray:
    """Positions followed continuously across periodic boundaries, A, shape (n_frames, n_atoms, 3).

    Between consecutive frames the fractional displacement along every periodic axis is reduced to
    [-1/2, 1/2) (minimum image in the frame's own lattice), accumulated, and mapped back with each frame's
    cell.  Working in fractional coordinates keeps slowly changing NPT cells consistent (the same as
    LAMMPS image flags).  Atoms must move less than half a cell height between frames.
    """
    frames = _check_frames(frames)
    periodic = np.asarray(frames[0].pbc, dtype=bool)
    fractional = np.stack([atoms.cell.scaled_positions(atoms.positions) for atoms in frames])
    steps = np.diff(fractional, axis=0)
    steps[..., periodic] -= np.rint(steps[..., periodic])
    unwrapped = np.concatenate([fractional[:1], fractional[:1] + np.cumsum(steps, axis=0)])
    cells = np.stack([atoms.cell.array for atoms in frames])
    return np.einsum("fai,fij->faj", unwrapped, cells)


def _remove_com_drift(positions: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Subtract the displacement of the mass-weighted centre of mass since frame 0 from every atom."""
    com = np.einsum("fai,a->fi", positions, masses) / masses.sum()
    return positions - (com - com[0])[:, None, :]


def _msd(x: np.ndarray) -> np.ndarray:
    """Time-origin-averaged mean squared displacement, shape (n_lags,), averaged over particles.

    x has shape (n_frames, n_particles, 3).  numpy and scipy have no MSD routine and the MD-analysis
    libraries that do are not dependencies here, so we use the standard FFT form:
    MSD(m) = [sum_k (|x_{k+m}|^2 + |x_k|^2) - 2 sum_k x_{k+m}.x_k] / (N - m), the correlation computed with a
    zero-padded FFT (O(N log N) instead of O(N^2)); particles are processed in chunks to bound memory.
    """
    n = len(x)
    lags = np.arange(n)
    total = np.zeros(n)
    chunk = max(1, int(1e6 // (2 * n * 3)))
    for start in range(0, x.shape[1], chunk):
        part = x[:, start : start + chunk, :]
        squares = np.einsum("fpi,fpi->f", part, part)
        prefix = np.concatenate([[0.0], np.cumsum(squares)])
        square_sum = (prefix[n] - prefix[lags]) + prefix[n - lags]
        spectrum = np.fft.rfft(part, n=2 * n, axis=0)
        correlation = np.fft.irfft(spectrum * spectrum.conj(), n=2 * n, axis=0)[:n].sum(axis=(1, 2))
        total += square_sum - 2.0 * correlation
    return total / (n - lags) / x.shape[1]


def fit_lags(block_frames: int, dt_fs: float, fit_window_ps) -> np.ndarray:
    """Lag indices (frames) whose lag time lies in ``fit_window_ps`` = (start, end), ps.

    Raises ValueError if the window is not increasing and positive, if its end exceeds
    :data:`MAX_WINDOW_FRACTION_OF_BLOCK` of a block of ``block_frames`` frames, or if it holds fewer than
    two lags.
    """
    lo_ps, hi_ps = (float(v) for v in fit_window_ps)
    if not 0.0 < lo_ps < hi_ps:
        raise ValueError(f"fit_window_ps must satisfy 0 < start < end, got {list(fit_window_ps)} ps")
    block_ps = (block_frames - 1) * dt_fs / 1000.0
    if hi_ps > MAX_WINDOW_FRACTION_OF_BLOCK * block_ps + 1e-9:
        raise ValueError(
            f"fit_window_ps ends at {hi_ps:g} ps, beyond {MAX_WINDOW_FRACTION_OF_BLOCK:g} of a block of "
            f"{block_ps:g} ps: run longer, use fewer blocks or end the window earlier"
        )
    lags = np.arange(math.ceil(lo_ps * 1000.0 / dt_fs - 1e-9), math.floor(hi_ps * 1000.0 / dt_fs + 1e-9) + 1)
    if len(lags) < 2:
        raise ValueError(f"fit_window_ps {list(fit_window_ps)} holds {len(lags)} lag(s) at {dt_fs:g} fs sampling")
    return lags


def _slope_and_exponent(msd: np.ndarray, lags: np.ndarray, dt_fs: float) -> tuple[float, float]:
    """Least-squares slope of MSD against lag time over ``lags`` (A^2/fs) and d log MSD / d log t there."""
    t = lags * dt_fs
    slope = float(np.polyfit(t, msd[lags], 1)[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        exponent = float(np.polyfit(np.log(t), np.log(msd[lags]), 1)[0]) if np.all(msd[lags] > 0) else math.nan
    return slope, exponent


def _blocks(positions, dt_fs, masks, n_blocks, fit_window_ps) -> tuple[np.ndarray, np.ndarray]:
    """Per block and atom group: D (A^2/fs, MSD = 6 D t) and the MSD exponent, each (n_blocks, n_groups)."""
    slices = _block_slices(len(positions), n_blocks)
    lags = fit_lags(slices[0].stop - slices[0].start, dt_fs, fit_window_ps)
    d, exponent = np.zeros((n_blocks, len(masks))), np.zeros((n_blocks, len(masks)))
    for b, s in enumerate(slices):
        for g, mask in enumerate(masks):
            slope, exponent[b, g] = _slope_and_exponent(_msd(positions[s][:, mask]), lags, dt_fs)
            d[b, g] = slope / 6.0
    return d, exponent


def _check_dynamics_args(frames, dt_fs: float, n_blocks: int) -> list[Atoms]:
    frames = _check_frames(frames)
    if not dt_fs > 0:
        raise ValueError(f"dt_fs must be > 0 fs, got {dt_fs}")
    if int(n_blocks) < 1 or len(frames) // int(n_blocks) < 3:
        raise ValueError(f"{len(frames)} frames cannot be cut into {n_blocks} blocks of >= 3 frames")
    return frames


def _window(frames, dt_fs, n_blocks, fit_window_ps) -> dict:
    """What a transport result records about its fit: window and block length, ps."""
    block = len(frames) // n_blocks
    return {"fit_window_ps": [float(v) for v in fit_window_ps], "block_length_ps": (block - 1) * dt_fs / 1000.0,
            "n_blocks": int(n_blocks)}


def self_diffusion(frames: Sequence[Atoms], dt_fs: float, fit_window_ps, species=None, n_blocks: int = 5) -> dict:
    """Self-diffusion coefficient of every species from the Einstein relation MSD(t) = 6 D t.

    Positions are unwrapped, the centre-of-mass drift of the whole system is removed, and the trajectory
    is cut into ``n_blocks`` blocks.  In each block the time-origin-averaged MSD of the species is fitted
    with a straight line (slope and intercept) over lag times in ``fit_window_ps`` (ps).  D is the mean of
    the block values, its error their standard error.

    Returns species -> {"D_A2_fs", "D_A2_fs_sem" (A^2/fs), "D_1e-9_m2_s", "D_1e-9_m2_s_sem" (10^-9 m^2/s),
    "msd_exponent" (block mean of d log MSD / d log t in the window), "n_atoms", "fit_window_ps",
    "block_length_ps", "n_blocks"}.
    """
    frames = _check_dynamics_args(frames, dt_fs, n_blocks)
    symbols = np.array(frames[0].get_chemical_symbols())
    species = _species(frames[0]) if species is None else [str(s) for s in species]
    for s in species:
        if s not in symbols:
            raise ValueError(f"species {s!r} not in the trajectory (have {_species(frames[0])})")
    positions = _remove_com_drift(unwrap(frames), frames[0].get_masses())
    masks = [symbols == s for s in species]
    per_block, exponents = _blocks(positions, dt_fs, masks, n_blocks, fit_window_ps)
    result = {}
    for column, (s, mask) in enumerate(zip(species, masks)):
        mean, sem = _mean_and_sem(per_block[:, column])
        result[s] = {
            "D_A2_fs": mean,
            "D_A2_fs_sem": sem,
            "D_1e-9_m2_s": mean * A2_PER_FS_IN_1E9_M2_PER_S,
            "D_1e-9_m2_s_sem": sem * A2_PER_FS_IN_1E9_M2_PER_S,
            "msd_exponent": float(exponents[:, column].mean()),
            "n_atoms": int(mask.sum()),
            **_window(frames, dt_fs, n_blocks, fit_window_ps),
        }
    return result


def conductivity_S_cm(msd_slope_e2_A2_fs: float, volume_A3: float, temperature_K: float) -> float:
    """sigma = slope / (6 V kB T) in S/cm, for the slope of <|M(t) - M(0)|^2> against t in e^2 A^2/fs.

    The same conversion gives the Nernst-Einstein value with slope = 6 sum_i q_i^2 D_i.
    """
    if not (volume_A3 > 0 and temperature_K > 0):
        raise ValueError(f"volume ({volume_A3} A^3) and temperature ({temperature_K} K) must be > 0")
    sigma = msd_slope_e2_A2_fs / (6.0 * volume_A3 * units.kB * temperature_K)  # e^2 / (A eV fs)
    return float(sigma * E2_PER_A_EV_FS_IN_S_PER_CM)


def ionic_conductivity(frames: Sequence[Atoms], dt_fs: float, charges: dict[str, float], temperature_K: float,
                       fit_window_ps, n_blocks: int = 5) -> dict:
    """Ionic conductivity from the Einstein-Helfand relation and the Nernst-Einstein estimate, S/cm.

    Einstein-Helfand: M(t) = sum_i q_i r_i(t) from unwrapped, drift-corrected positions;
    sigma = d<|M(t) - M(0)|^2>/dt / (6 V kB T), the slope fitted as in :func:`self_diffusion` on each block
    (V the block's mean volume).  Nernst-Einstein (no cross-correlations):
    sigma_NE = sum_species N_s q_s^2 D_s / (V kB T), from the same blocks.  Values are block means, errors
    their standard errors.  The collective M is one vector per frame, so sigma is far noisier than D.

    Returns "sigma_S_cm", "sigma_S_cm_sem" (Einstein-Helfand), "sigma_NE_S_cm", "sigma_NE_S_cm_sem"
    (Nernst-Einstein), "haven_ratio" (sigma_NE / sigma), "volume_A3" (mean volume), "fit_window_ps",
    "block_length_ps", "n_blocks".
    """
    frames = _check_dynamics_args(frames, dt_fs, n_blocks)
    symbols = np.array(frames[0].get_chemical_symbols())
    species = _species(frames[0])
    missing = [s for s in species if s not in charges]
    if missing:
        raise ValueError(f"no charge given for species {missing}")
    q = np.array([float(charges[s]) for s in symbols])

    positions = _remove_com_drift(unwrap(frames), frames[0].get_masses())
    volumes = np.array([atoms.cell.volume for atoms in frames])
    dipole = np.einsum("fai,a->fi", positions, q)[:, None, :]  # e A, one "particle"

    masks = [symbols == s for s in species]
    d_blocks, _ = _blocks(positions, dt_fs, masks, n_blocks, fit_window_ps)
    ne_weights = np.array([mask.sum() * float(charges[s]) ** 2 for s, mask in zip(species, masks)])
    slices = _block_slices(len(frames), n_blocks)
    lags = fit_lags(slices[0].stop - slices[0].start, dt_fs, fit_window_ps)
    sigma_eh, sigma_ne = [], []
    for block, s in enumerate(slices):
        volume = volumes[s].mean()
        slope, _ = _slope_and_exponent(_msd(dipole[s]), lags, dt_fs)
        sigma_eh.append(conductivity_S_cm(slope, volume, temperature_K))
        sigma_ne.append(conductivity_S_cm(6.0 * ne_weights @ d_blocks[block], volume, temperature_K))
    eh, eh_sem = _mean_and_sem(np.array(sigma_eh))
    ne, ne_sem = _mean_and_sem(np.array(sigma_ne))
    return {
        "sigma_S_cm": eh,
        "sigma_S_cm_sem": eh_sem,
        "sigma_NE_S_cm": ne,
        "sigma_NE_S_cm_sem": ne_sem,
        "haven_ratio": ne / eh if eh != 0 else float("nan"),
        "volume_A3": float(volumes.mean()),
        **_window(frames, dt_fs, n_blocks, fit_window_ps),
    }
