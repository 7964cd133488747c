"""Observables of an MD trajectory, each with an uncertainty, and a stability verdict for a run.

These are the quantities used to validate a machine-learned potential on molten salts: partial radial
distribution functions, self-diffusion coefficients (Einstein relation), ionic conductivity
(Einstein-Helfand, compared with Nernst-Einstein), density, and whether a run stayed physical.

A trajectory is a sequence of :class:`ase.Atoms` with the same atoms in the same order, equally spaced by
``dt_fs`` femtoseconds.  Positions may be wrapped into the cell; the cell may change slowly (NPT).
Units are ASE's: positions in A, energies in eV, time in fs, temperature in K, charges in e.

Uncertainties are standard errors of the mean from block averaging: the trajectory is cut into
``n_blocks`` contiguous blocks of equal length, the observable is evaluated on every block, and the spread
of the block values gives the error.  This assumes blocks are longer than the correlation time of the
observable.

Libraries: RDF histogramming and normalisation are ASE's ``get_rdf`` (LAMMPS-consistent partials); cell
geometry is ASE's ``Cell``; the MSD uses numpy's FFT; unit constants come from ``scipy.constants`` and
``ase.units``.  We did not take the MSD from MDAnalysis (``EinsteinMSD``) or freud (``freud.msd``): both need
coordinates unwrapped beforehand (MDAnalysis's ``NoJump`` transformation, freud's image counts) from a
Universe or arrays we would first build from the ASE frames, and neither computes the Einstein-Helfand
conductivity from the charge displacement, which needs the same unwrapped coordinates.  Unwrapping in
fractional coordinates (valid for a changing NPT cell) and the FFT MSD are therefore here, each tested
against trajectories with a known answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations_with_replacement
from typing import Sequence

import numpy as np
from ase import Atoms, units
from ase.geometry.rdf import get_rdf
from scipy import constants
from scipy.integrate import trapezoid

#: 1 A^2/fs expressed in 10^-9 m^2/s (the unit of self-diffusion tables): 1e-20 m^2 / 1e-15 s = 1e-5 m^2/s.
A2_PER_FS_IN_1E9_M2_PER_S = 1e-20 / 1e-15 / 1e-9

#: 1 amu/A^3 expressed in g/cm^3 (1 A^3 = 1e-24 cm^3).
AMU_PER_A3_IN_G_PER_CM3 = constants.atomic_mass * 1e3 / 1e-24

#: 1 e^2 A^2 / (A^3 eV fs) expressed in S/cm.  e^2/eV = e/V (coulomb per volt = farad), so the unit is
#: e [C] / (V * 1e-10 m * 1e-15 s) = e * 1e25 S/m = e * 1e23 S/cm, about 1.602e4 S/cm.
E2_PER_A_EV_FS_IN_S_PER_CM = constants.e / (1e-10 * 1e-15) / 100.0

#: Default fraction of a block's lag range over which MSD slopes are fitted: the first 20 % (ballistic and
#: caging regime) is skipped, lags beyond 60 % are skipped because few time origins average them.
DEFAULT_FIT_WINDOW = (0.2, 0.6)


# ----------------------------------------------------------------------------------------------------------
# Block averaging
# ----------------------------------------------------------------------------------------------------------


def block_average(series, n_blocks: int = 5) -> tuple:
    """Mean and standard error of the mean of a time series from contiguous blocks.

    Parameters
    ----------
    series : array_like, shape (n_samples, ...)
        Samples in time order along axis 0; trailing axes are averaged independently (e.g. RDF bins).
    n_blocks : int
        Number of contiguous, equally long blocks.  When ``n_samples`` is not a multiple of ``n_blocks``
        the earliest ``n_samples % n_blocks`` samples (the least equilibrated) are dropped.

    Returns
    -------
    mean, sem
        Mean of the block means and ``std(block means, ddof=1) / sqrt(n_blocks)``, in the unit of the
        series (floats for a 1-D series, arrays otherwise).  ``sem`` is NaN for a single block.
    """
    values = np.asarray(series, dtype=float)
    if values.ndim == 0 or len(values) == 0:
        raise ValueError("block_average: series must hold at least one sample")
    n_blocks = int(n_blocks)
    if not 1 <= n_blocks <= len(values):
        raise ValueError(f"block_average: n_blocks must lie in [1, {len(values)}], got {n_blocks}")
    block_means = np.stack([values[s].mean(axis=0) for s in _block_slices(len(values), n_blocks)])
    return _mean_and_sem(block_means)


def _mean_and_sem(block_values: np.ndarray) -> tuple:
    """Mean and standard error of independent block values along axis 0 (NaN error for one block)."""
    n = len(block_values)
    mean = block_values.mean(axis=0)
    if n > 1:
        sem = block_values.std(axis=0, ddof=1) / math.sqrt(n)
    else:
        sem = np.full_like(mean, np.nan)
    if np.ndim(mean) == 0:
        return float(mean), float(sem)
    return mean, sem


def _block_slices(n_samples: int, n_blocks: int) -> list[slice]:
    """Contiguous slices of equal length ``n_samples // n_blocks``, the leading remainder dropped."""
    length = n_samples // n_blocks
    start = n_samples - n_blocks * length
    return [slice(start + k * length, start + (k + 1) * length) for k in range(n_blocks)]


# ----------------------------------------------------------------------------------------------------------
# Trajectory checks
# ----------------------------------------------------------------------------------------------------------


def _check_frames(frames: Sequence[Atoms]) -> list[Atoms]:
    """Return the frames as a list after checking they describe the same atoms in the same order."""
    frames = list(frames)
    if not frames:
        raise ValueError("the trajectory holds no frames")
    numbers = frames[0].numbers
    for k, atoms in enumerate(frames):
        if len(atoms) != len(numbers) or not np.array_equal(atoms.numbers, numbers):
            raise ValueError(f"frame {k} holds different atoms than frame 0 (same atoms, same order needed)")
    return frames


def _species(atoms: Atoms) -> list[str]:
    """Chemical symbols in order of first appearance."""
    return list(dict.fromkeys(atoms.get_chemical_symbols()))


def _min_cell_height(cell) -> float:
    """Smallest distance between opposite faces of the cell, A (1 / |reciprocal vector|)."""
    return float(1.0 / np.linalg.norm(np.asarray(cell.reciprocal()), axis=1).max())


# ----------------------------------------------------------------------------------------------------------
# Radial distribution functions
# ----------------------------------------------------------------------------------------------------------


def _pair_key(pair) -> tuple[str, str]:
    if isinstance(pair, str):
        parts = pair.split("-")
        if len(parts) != 2:
            raise ValueError(f"pair {pair!r} is not of the form 'A-B'")
        return parts[0], parts[1]
    a, b = pair
    return str(a), str(b)


def _mic_distance_matrix(atoms: Atoms) -> np.ndarray:
    """All pair distances, A, exact for every distance below half the smallest cell height.

    This is the rounding of ASE's ``naive_find_mic``: fractional differences are reduced to the nearest
    lattice vector.  A displacement v with |v| < h_min / 2 has every fractional component |v . b_i| < 1/2,
    so rounding returns it exactly; longer pairs may come out too long, never too short.  For RDFs with
    rmax <= h_min / 2 this is exact.  We convert the n positions to fractional coordinates once instead of
    the n^2 difference vectors that ``naive_find_mic`` would solve for (0.09 s instead of 0.7 s for 800
    atoms here), and avoid ``get_all_distances(mic=True)``, which searches 27 images for every pair (2.4 s).
    Memory grows as n_atoms^2 (about 100 MB per frame for 1000 atoms).
    """
    fractional = atoms.cell.scaled_positions(atoms.positions)
    delta = fractional[None, :, :] - fractional[:, None, :]
    delta -= np.rint(delta)
    return np.linalg.norm(delta @ atoms.cell.array, axis=-1)


def partial_rdfs(frames: Sequence[Atoms], rmax_A: float, nbins: int, pairs=None, n_blocks: int = 5) -> dict:
    """Partial radial distribution functions g_ab(r) averaged over a periodic trajectory.

    The histogramming and normalisation are ASE's (``ase.geometry.rdf.get_rdf``, the LAMMPS ``compute rdf``
    convention): g_ab(r) = n_ab(r) / (N_a rho_b V_shell(r)) with rho_b = N_b / V of each frame, so an
    ideal gas gives g_ab -> 1 (g_aa -> (N_a - 1) / N_a).  We only supply each frame's distance matrix.

    Parameters
    ----------
    frames : sequence of ase.Atoms
        Fully periodic frames (NVT or NPT); positions may be wrapped.
    rmax_A : float
        Largest distance, A; at most half the smallest cell height of every frame.
    nbins : int
        Number of equal bins on [0, rmax_A].
    pairs : sequence of "A-B" strings or (A, B) tuples, optional
        Species pairs to compute.  Default: every unordered pair of species, species taken in order of
        first appearance in frame 0 (a rock salt built as NaCl gives "Na-Na", "Na-Cl", "Cl-Cl").
    n_blocks : int
        Blocks over frames for the per-bin standard error (reduced to the number of frames if larger).

    Returns
    -------
    dict
        ``"r"``: bin centres, A; ``"A-B"``: g_AB(r) (dimensionless) for every pair; ``"sem"``: a dict
        pair -> per-bin standard error of g from block averaging over frames (NaN for one frame).
    """
    frames = _check_frames(frames)
    rmax_A = float(rmax_A)
    nbins = int(nbins)
    if rmax_A <= 0 or nbins < 1:
        raise ValueError(f"rmax_A must be > 0 A and nbins >= 1, got rmax_A={rmax_A}, nbins={nbins}")
    for k, atoms in enumerate(frames):
        if not atoms.pbc.all():
            raise ValueError(f"partial_rdfs needs a fully periodic cell; frame {k} has pbc={atoms.pbc}")
        limit = 0.5 * _min_cell_height(atoms.cell)
        if rmax_A > limit:
            raise ValueError(
                f"rmax_A = {rmax_A:.4g} A exceeds half the smallest cell height ({limit:.4g} A) in frame {k}"
            )

    symbols = _species(frames[0])
    if pairs is None:
        pair_list = list(combinations_with_replacement(symbols, 2))
    else:
        pair_list = [_pair_key(p) for p in pairs]
        for a, b in pair_list:
            if a not in symbols or b not in symbols:
                raise ValueError(f"pair {a}-{b}: species not present (have {symbols})")

    per_frame = {p: [] for p in pair_list}
    r = None
    for atoms in frames:
        distances = _mic_distance_matrix(atoms)
        for a, b in pair_list:
            g, r = get_rdf(atoms, rmax_A, nbins, distance_matrix=distances, elements=(a, b))
            per_frame[(a, b)].append(g)

    result: dict = {"r": np.asarray(r, dtype=float)}
    sems = {}
    blocks = min(int(n_blocks), len(frames))
    for (a, b), gs in per_frame.items():
        mean, sem = block_average(np.asarray(gs), blocks)
        result[f"{a}-{b}"] = mean
        sems[f"{a}-{b}"] = sem
    result["sem"] = sems
    return result


def rdf_error(r, g_model, g_ref) -> float:
    """Root-mean-square difference of two g(r) on the same grid, weighted uniformly in r.

    error = sqrt( integral (g_model - g_ref)^2 dr / (r_max - r_min) ), trapezoidal rule over the given
    grid r (A).  g is dimensionless, so the error is dimensionless; a constant offset c gives |c|.
    """
    r = np.asarray(r, dtype=float)
    diff = np.asarray(g_model, dtype=float) - np.asarray(g_ref, dtype=float)
    if r.ndim != 1 or diff.shape != r.shape:
        raise ValueError(f"r, g_model and g_ref must be 1-D of equal length, got {r.shape} and {diff.shape}")
    if len(r) < 2 or not np.all(np.diff(r) > 0):
        raise ValueError("r must hold at least two increasing values (A)")
    return float(np.sqrt(trapezoid(diff**2, r) / (r[-1] - r[0])))


# ----------------------------------------------------------------------------------------------------------
# Unwrapping and mean squared displacements
# ----------------------------------------------------------------------------------------------------------


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


def _fit_lags(n_frames: int, fit_window: tuple[float, float]) -> np.ndarray:
    """Lag indices (in frames) inside the fit window, given as fractions of the block's longest lag."""
    lo, hi = fit_window
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"fit_window must satisfy 0 <= lo < hi <= 1, got {fit_window}")
    longest = n_frames - 1
    lags = np.arange(max(1, math.ceil(lo * longest)), math.floor(hi * longest) + 1)
    if len(lags) < 2:
        raise ValueError(
            f"blocks of {n_frames} frames leave {len(lags)} lag(s) in the fit window {fit_window}: "
            "use a longer trajectory or fewer blocks"
        )
    return lags


def _msd_slope(x: np.ndarray, dt_fs: float, fit_window) -> float:
    """Slope of MSD against lag time over the fit window (least squares with intercept), A^2/fs."""
    lags = _fit_lags(len(x), fit_window)
    msd = _msd(x)
    slope, _ = np.polyfit(lags * dt_fs, msd[lags], 1)
    return float(slope)


def _block_self_diffusion(positions, dt_fs, masks, n_blocks, fit_window) -> np.ndarray:
    """D (A^2/fs) per block and per atom group, shape (n_blocks, n_groups): MSD = 6 D t."""
    slices = _block_slices(len(positions), n_blocks)
    return np.array(
        [[_msd_slope(positions[s][:, m], dt_fs, fit_window) / 6.0 for m in masks] for s in slices]
    )


def _check_dynamics_args(frames, dt_fs: float, n_blocks: int) -> list[Atoms]:
    frames = _check_frames(frames)
    if not dt_fs > 0:
        raise ValueError(f"dt_fs must be > 0 fs, got {dt_fs}")
    if int(n_blocks) < 1 or len(frames) // int(n_blocks) < 3:
        raise ValueError(f"{len(frames)} frames cannot be cut into {n_blocks} blocks of >= 3 frames")
    return frames


# ----------------------------------------------------------------------------------------------------------
# Self-diffusion and ionic conductivity
# ----------------------------------------------------------------------------------------------------------


def self_diffusion(
    frames: Sequence[Atoms],
    dt_fs: float,
    species=None,
    n_blocks: int = 5,
    fit_window: tuple[float, float] = DEFAULT_FIT_WINDOW,
) -> dict:
    """Self-diffusion coefficient of every species from the Einstein relation MSD(t) = 6 D t.

    Positions are unwrapped, the centre-of-mass drift of the whole system is removed, and the trajectory
    is cut into ``n_blocks`` blocks.  In each block the time-origin-averaged MSD of the species is fitted
    with a straight line (slope and intercept) over lags in ``fit_window`` (fractions of the block's
    longest lag; by default 20-60 %, skipping the ballistic start and the poorly averaged tail).
    D is the mean of the block values, its error their standard error.

    Parameters
    ----------
    frames : sequence of ase.Atoms
        Trajectory, frames ``dt_fs`` fs apart.
    dt_fs : float
        Time between frames, fs.
    species : sequence of str, optional
        Chemical symbols to report (default: all, in order of first appearance).
    n_blocks : int
        Number of blocks (>= 2 for an error estimate).
    fit_window : (float, float)
        Fit range as fractions of the block's longest lag.

    Returns
    -------
    dict
        species -> {"D_A2_fs", "D_A2_fs_sem" (A^2/fs), "D_1e-9_m2_s", "D_1e-9_m2_s_sem" (10^-9 m^2/s),
        "n_atoms", "fit_window_fs" (lag range fitted, fs)}.
    """
    frames = _check_dynamics_args(frames, dt_fs, n_blocks)
    symbols = np.array(frames[0].get_chemical_symbols())
    species = _species(frames[0]) if species is None else [str(s) for s in species]
    for s in species:
        if s not in symbols:
            raise ValueError(f"species {s!r} not in the trajectory (have {_species(frames[0])})")
    positions = _remove_com_drift(unwrap(frames), frames[0].get_masses())
    masks = [symbols == s for s in species]
    per_block = _block_self_diffusion(positions, dt_fs, masks, n_blocks, fit_window)
    lags = _fit_lags(len(frames) // n_blocks, fit_window)
    window_fs = (float(lags[0] * dt_fs), float(lags[-1] * dt_fs))
    result = {}
    for column, (s, mask) in enumerate(zip(species, masks)):
        mean, sem = _mean_and_sem(per_block[:, column])
        result[s] = {
            "D_A2_fs": mean,
            "D_A2_fs_sem": sem,
            "D_1e-9_m2_s": mean * A2_PER_FS_IN_1E9_M2_PER_S,
            "D_1e-9_m2_s_sem": sem * A2_PER_FS_IN_1E9_M2_PER_S,
            "n_atoms": int(mask.sum()),
            "fit_window_fs": window_fs,
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


def ionic_conductivity(
    frames: Sequence[Atoms],
    dt_fs: float,
    charges: dict[str, float],
    temperature_K: float,
    n_blocks: int = 5,
    fit_window: tuple[float, float] = DEFAULT_FIT_WINDOW,
) -> dict:
    """Ionic conductivity from the Einstein-Helfand relation and the Nernst-Einstein estimate, S/cm.

    Einstein-Helfand: M(t) = sum_i q_i r_i(t) from unwrapped, drift-corrected positions;
    sigma = d<|M(t) - M(0)|^2>/dt / (6 V kB T), the slope fitted as in :func:`self_diffusion` on each block
    (V the block's mean volume).  Nernst-Einstein (no cross-correlations):
    sigma_NE = sum_species N_s q_s^2 D_s / (V kB T), from the same blocks.  Values are block means, errors
    their standard errors.  The collective M is one vector per frame, so sigma is far noisier than D.

    Parameters
    ----------
    frames : sequence of ase.Atoms
        Trajectory, frames ``dt_fs`` fs apart.
    dt_fs : float
        Time between frames, fs.
    charges : dict
        Charge of every species, e (nominal charges, e.g. {"Na": 1, "Cl": -1}).
    temperature_K : float
        Temperature of the run, K.
    n_blocks, fit_window
        As in :func:`self_diffusion`.

    Returns
    -------
    dict
        "sigma_S_cm", "sigma_S_cm_sem" (Einstein-Helfand), "sigma_NE_S_cm", "sigma_NE_S_cm_sem"
        (Nernst-Einstein), "haven_ratio" (sigma_NE / sigma, dimensionless), "volume_A3" (mean volume),
        "fit_window_fs".
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
    d_blocks = _block_self_diffusion(positions, dt_fs, masks, n_blocks, fit_window)
    ne_weights = np.array([mask.sum() * float(charges[s]) ** 2 for s, mask in zip(species, masks)])
    sigma_eh, sigma_ne = [], []
    for block, s in enumerate(_block_slices(len(frames), n_blocks)):
        volume = volumes[s].mean()
        sigma_eh.append(conductivity_S_cm(_msd_slope(dipole[s], dt_fs, fit_window), volume, temperature_K))
        sigma_ne.append(conductivity_S_cm(6.0 * ne_weights @ d_blocks[block], volume, temperature_K))
    eh, eh_sem = _mean_and_sem(np.array(sigma_eh))
    ne, ne_sem = _mean_and_sem(np.array(sigma_ne))
    lags = _fit_lags(len(frames) // n_blocks, fit_window)
    return {
        "sigma_S_cm": eh,
        "sigma_S_cm_sem": eh_sem,
        "sigma_NE_S_cm": ne,
        "sigma_NE_S_cm_sem": ne_sem,
        "haven_ratio": ne / eh if eh != 0 else float("nan"),
        "volume_A3": float(volumes.mean()),
        "fit_window_fs": (float(lags[0] * dt_fs), float(lags[-1] * dt_fs)),
    }


# ----------------------------------------------------------------------------------------------------------
# Density
# ----------------------------------------------------------------------------------------------------------


def density(frames: Sequence[Atoms], n_blocks: int = 5) -> tuple[float, float]:
    """Mass density, g/cm^3: block-averaged mean and standard error over frames (NaN error for one frame)."""
    frames = _check_frames(frames)
    mass_amu = float(frames[0].get_masses().sum())
    rho = np.array([mass_amu / atoms.cell.volume for atoms in frames]) * AMU_PER_A3_IN_G_PER_CM3
    return block_average(rho, min(int(n_blocks), len(rho)))


# ----------------------------------------------------------------------------------------------------------
# Stability verdict
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StabilityThresholds:
    """Limits beyond which an MD run counts as failed.

    max_force_eV_A              largest force on any atom, eV/A
    min_distance_A              smallest allowed interatomic distance, A
    max_temperature_deviation_K largest allowed |T - T_target| of the instantaneous temperature, K
    max_energy_drift_eV_atom_ps largest allowed |slope| of E/N against t, eV/atom/ps, fitted (least squares)
                                from the start to each step once ``min_drift_window_fs`` fs have passed
                                (a run shorter than that is judged once, on its whole length)
    min_drift_window_fs         shortest stretch, fs, over which a drift is judged
    rdf_onset_level             g_ref(r) value marking the onset of the reference's first peak
    rdf_margin_A                distance, A, below that onset from which the model is checked
    rdf_artefact_level          largest model g(r) tolerated below (onset - margin)
    """

    max_force_eV_A: float = 10.0
    min_distance_A: float = 1.5
    max_temperature_deviation_K: float = 500.0
    max_energy_drift_eV_atom_ps: float = 0.01
    min_drift_window_fs: float = 1000.0
    rdf_onset_level: float = 0.1
    rdf_margin_A: float = 0.25
    rdf_artefact_level: float = 0.1


@dataclass(frozen=True)
class StabilityVerdict:
    """Outcome of :func:`stability_verdict`.

    stable            True if no criterion failed
    reason            what failed first and when ("" if stable); simultaneous failures joined by "; "
    time_survived_fs  time from the first step to the last good step before the first failure, fs
                      (the full length if stable, 0 if the first step already fails)
    """

    stable: bool
    reason: str
    time_survived_fs: float


def _first_index(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if len(hits) else None


def _drift_slopes(t_fs: np.ndarray, energy_per_atom: np.ndarray) -> np.ndarray:
    """Least-squares slope of E/N against t over steps 0..k for every k, eV/atom/ps (NaN for k = 0).

    Written with running sums so all prefixes cost O(n); times and energies are taken relative to the
    first step to limit cancellation.
    """
    t = (t_fs - t_fs[0]) / 1000.0
    e = energy_per_atom - energy_per_atom[0]
    n = np.arange(1, len(t) + 1)
    st, se = np.cumsum(t), np.cumsum(e)
    stt, ste = np.cumsum(t * t), np.cumsum(t * e)
    denominator = n * stt - st * st
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, (n * ste - st * se) / denominator, np.nan)


def _rdf_artefact(rdf_model: dict, rdf_ref: dict, limits: StabilityThresholds) -> str:
    """Describe the first pair whose model g(r) shows density below the reference's first-peak onset."""
    for pair, g_ref in rdf_ref.items():
        if pair in ("r", "sem") or pair not in rdf_model:
            continue
        r_ref = np.asarray(rdf_ref["r"], dtype=float)
        onset = _first_index(np.asarray(g_ref) >= limits.rdf_onset_level)
        if onset is None:
            continue
        r_check = r_ref[onset]
        r_model = np.asarray(rdf_model["r"], dtype=float)
        g_model = np.asarray(rdf_model[pair], dtype=float)
        below = r_model < r_check - limits.rdf_margin_A
        if below.any() and g_model[below].max() > limits.rdf_artefact_level:
            k = int(np.argmax(np.where(below, g_model, -np.inf)))
            return (
                f"RDF artefact: g_{pair} = {g_model[k]:.3g} at r = {r_model[k]:.3g} A, below the reference "
                f"first-peak onset {r_check:.3g} A (limit {limits.rdf_artefact_level:g})"
            )
    return ""


def stability_verdict(
    time_fs,
    temperature_K,
    energy_eV,
    max_force_eV_A,
    min_distance_A,
    n_atoms: int,
    target_temperature_K: float,
    thresholds: StabilityThresholds | None = None,
    rdf_model: dict | None = None,
    rdf_ref: dict | None = None,
) -> StabilityVerdict:
    """Decide whether an MD run stayed physical, and for how long.

    Per-step criteria (each step is judged; the first failing step ends the run): any non-finite value;
    max force above ``max_force_eV_A``; minimum distance below ``min_distance_A``; |T - T_target| above
    ``max_temperature_deviation_K``; energy drift (see :class:`StabilityThresholds`) above
    ``max_energy_drift_eV_atom_ps``.  Optional whole-run criterion: model g(r) above
    ``rdf_artefact_level`` at distances where the reference g(r) has not yet reached its first peak
    (both RDFs as returned by :func:`partial_rdfs`; every pair present in both is checked).  An RDF
    artefact is not localised in time: on its own it leaves ``time_survived_fs`` at the full length.

    Parameters
    ----------
    time_fs, temperature_K, energy_eV, max_force_eV_A, min_distance_A : array_like, shape (n_steps,)
        Per-step series: time (fs), instantaneous temperature (K), total or conserved energy (eV),
        largest force on any atom (eV/A), smallest interatomic distance (A).
    n_atoms : int
        Number of atoms (for the per-atom drift).
    target_temperature_K : float
        Thermostat target, K.
    thresholds : StabilityThresholds, optional
        Limits (defaults of :class:`StabilityThresholds` if omitted).
    rdf_model, rdf_ref : dict, optional
        Model and reference partial RDFs, as returned by :func:`partial_rdfs`.
    """
    limits = thresholds or StabilityThresholds()
    series = {
        "time": np.asarray(time_fs, dtype=float),
        "temperature": np.asarray(temperature_K, dtype=float),
        "energy": np.asarray(energy_eV, dtype=float),
        "max force": np.asarray(max_force_eV_A, dtype=float),
        "min distance": np.asarray(min_distance_A, dtype=float),
    }
    n_steps = len(series["time"])
    if n_steps == 0 or any(v.shape != (n_steps,) for v in series.values()):
        raise ValueError("all per-step series must be 1-D, non-empty and of equal length")
    if int(n_atoms) < 1:
        raise ValueError(f"n_atoms must be >= 1, got {n_atoms}")
    t = series["time"]
    if not np.all(np.diff(t) > 0):
        raise ValueError("time_fs must increase strictly")

    failures: dict[int, list[str]] = {}

    def record(index: int | None, message) -> None:
        if index is not None:
            failures.setdefault(index, []).append(message(index))

    for name, values in series.items():
        record(_first_index(~np.isfinite(values)), lambda k, n=name: f"non-finite {n} at t = {t[k]:g} fs")

    force = series["max force"]
    record(
        _first_index(force > limits.max_force_eV_A),
        lambda k: f"max force {force[k]:.4g} eV/A > {limits.max_force_eV_A:g} eV/A at t = {t[k]:g} fs",
    )
    distance = series["min distance"]
    record(
        _first_index(distance < limits.min_distance_A),
        lambda k: f"min distance {distance[k]:.4g} A < {limits.min_distance_A:g} A at t = {t[k]:g} fs",
    )
    deviation = np.abs(series["temperature"] - float(target_temperature_K))
    record(
        _first_index(deviation > limits.max_temperature_deviation_K),
        lambda k: (
            f"temperature {series['temperature'][k]:.4g} K deviates from {target_temperature_K:g} K by more "
            f"than {limits.max_temperature_deviation_K:g} K at t = {t[k]:g} fs"
        ),
    )
    slopes = _drift_slopes(t, series["energy"] / int(n_atoms))
    judged = (t - t[0]) >= limits.min_drift_window_fs
    if not judged.any() and n_steps >= 3:
        judged[-1] = True
    with np.errstate(invalid="ignore"):
        drifting = judged & (np.abs(slopes) > limits.max_energy_drift_eV_atom_ps)
    record(
        _first_index(drifting),
        lambda k: (
            f"energy drift {slopes[k]:.3g} eV/atom/ps exceeds {limits.max_energy_drift_eV_atom_ps:g} "
            f"eV/atom/ps over t = {t[0]:g}-{t[k]:g} fs"
        ),
    )

    full_length = float(t[-1] - t[0])
    reasons, survived = [], full_length
    if failures:
        first = min(failures)
        reasons = failures[first]
        survived = float(t[first - 1] - t[0]) if first > 0 else 0.0
    if rdf_model is not None and rdf_ref is not None:
        artefact = _rdf_artefact(rdf_model, rdf_ref, limits)
        if artefact:
            reasons = reasons + [artefact]
    return StabilityVerdict(stable=not reasons, reason="; ".join(reasons), time_survived_fs=survived)
