"""Structural and thermodynamic observables of an MD trajectory, each with a block-average uncertainty:
partial radial distribution functions and density; the block average itself.

Transport (self-diffusion, ionic conductivity) is :mod:`confselect.transport`, the stability verdict
:mod:`confselect.stability`.

A trajectory is a sequence of :class:`ase.Atoms` with the same atoms in the same order.  Positions may be
wrapped into the cell; the cell may change slowly (NPT).  Units are ASE's: positions in A, energies in eV,
time in fs, temperature in K, charges in e.

Uncertainties are standard errors of the mean from block averaging: the trajectory is cut into
``n_blocks`` contiguous blocks of equal length, the observable is evaluated on every block, and the spread
of the block values gives the error.  This assumes blocks are longer than the correlation time of the
observable.

Libraries: RDF histogramming and normalisation are ASE's ``get_rdf`` (LAMMPS-consistent partials); cell
geometry is ASE's ``Cell``; unit constants come from ``scipy.constants``.
"""

from __future__ import annotations

import math
from itertools import combinations_with_replacement
from typing import Sequence

import numpy as np
from ase import Atoms
from ase.geometry.rdf import get_rdf
from scipy import constants
from scipy.integrate import trapezoid

#: 1 amu/A^3 expressed in g/cm^3 (1 A^3 = 1e-24 cm^3).
AMU_PER_A3_IN_G_PER_CM3 = constants.atomic_mass * 1e3 / 1e-24

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
# Density
# ----------------------------------------------------------------------------------------------------------


def density(frames: Sequence[Atoms], n_blocks: int = 5) -> tuple[float, float]:
    """Mass density, g/cm^3: block-averaged mean and standard error over frames (NaN error for one frame)."""
    frames = _check_frames(frames)
    mass_amu = float(frames[0].get_masses().sum())
    rho = np.array([mass_amu / atoms.cell.volume for atoms in frames]) * AMU_PER_A3_IN_G_PER_CM3
    return block_average(rho, min(int(n_blocks), len(rho)))

