"""Static pool generators for crystals: volume scans, random strains, rattling and normal-mode sampling.

Every generator takes a reference structure (an ASE ``Atoms``, usually a periodic crystal supercell) and
returns a list of new ``Atoms`` with no calculator attached; the caller labels them.  Each frame keeps the
reference's atom order, species and pbc, and its ``info`` holds only what was done to it (the reference's
``info`` is not carried over; the caller adds ``info["generator"]``).  Random generators take a ``seed``
for ``numpy.random.default_rng`` and are reproducible.

Units are ASE's: A, eV, amu, K; frequencies are reported in THz.

Cells are row vectors (ASE): a strain ``eps`` (symmetric 3x3, dimensionless) maps the cell to
``cell @ (I + eps)`` and every position ``r`` to ``r @ (I + eps)``, so fractional coordinates are unchanged.
Strains are recorded in Voigt order with engineering shears:
``strain_voigt = [e_xx, e_yy, e_zz, 2 e_yz, 2 e_xz, 2 e_xy]``.
"""

from __future__ import annotations

import warnings

import numpy as np
from ase import units

# Relative eigenvalue tolerance (to the largest eigenvalue of the mass-weighted Hessian) below which a mode
# counts as zero: 1e-4 in eigenvalue is 1 % of the highest frequency.
MODE_TOLERANCE = 1e-4
# Residual force (eV/A) on the reference above which normal-mode sampling warns that it is not relaxed.
MAX_REFERENCE_FORCE = 0.05


def _fresh(atoms):
    """A copy of ``atoms`` without calculator and with empty ``info``."""
    frame = atoms.copy()
    frame.calc = None
    frame.info = {}
    return frame


def _random_strain(rng, max_normal, max_shear):
    """A symmetric strain tensor: diagonal uniform in [-max_normal, max_normal], off-diagonal in
    [-max_shear, max_shear] (tensor components, not engineering shears)."""
    eps = np.diag(rng.uniform(-max_normal, max_normal, 3))
    for (i, j), value in zip(((1, 2), (0, 2), (0, 1)), rng.uniform(-max_shear, max_shear, 3)):
        eps[i, j] = eps[j, i] = value
    return eps


def strain_to_voigt(eps):
    """``[e_xx, e_yy, e_zz, 2 e_yz, 2 e_xz, 2 e_xy]`` of a symmetric 3x3 strain tensor (engineering shears)."""
    eps = np.asarray(eps)
    return [float(eps[0, 0]), float(eps[1, 1]), float(eps[2, 2]),
            float(2 * eps[1, 2]), float(2 * eps[0, 2]), float(2 * eps[0, 1])]


def _apply_strain(frame, eps):
    """Deform ``frame`` in place: cell -> cell @ (I + eps), atoms carried with the cell."""
    frame.set_cell(frame.cell.array @ (np.eye(3) + eps), scale_atoms=True)


def volume_scan(atoms, linear_strain_range=(-0.04, 0.04), n_frames=10):
    """Isotropic scaling of cell and positions by ``1 + e`` for ``n_frames`` values of ``e`` evenly spaced
    over ``linear_strain_range`` (ends included).

    info: ``linear_strain`` (e), ``volume_ratio`` ((1 + e)**3).
    """
    frames = []
    for e in np.linspace(linear_strain_range[0], linear_strain_range[1], n_frames):
        frame = _fresh(atoms)
        frame.set_cell(atoms.cell.array * (1.0 + e), scale_atoms=True)
        frame.info.update(linear_strain=float(e), volume_ratio=float((1.0 + e) ** 3))
        frames.append(frame)
    return frames


def strain(atoms, max_normal=0.03, max_shear=0.03, n_frames=20, seed=0):
    """Random homogeneous deformations: symmetric strains with normal components uniform in
    [-max_normal, max_normal] and shear tensor components e_ij (i != j) uniform in [-max_shear, max_shear].

    info: ``strain_voigt`` (Voigt order, engineering shears 2 e_ij; see the module docstring).
    """
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_frames):
        eps = _random_strain(rng, max_normal, max_shear)
        frame = _fresh(atoms)
        _apply_strain(frame, eps)
        frame.info["strain_voigt"] = strain_to_voigt(eps)
        frames.append(frame)
    return frames


def rattle(atoms, amplitudes_A=(0.02, 0.05, 0.1), n_per_amplitude=5, seed=0, max_strain=0.0):
    """Independent Gaussian displacements (standard deviation ``amplitude`` A per Cartesian component) of
    every atom, ``n_per_amplitude`` frames per amplitude.

    With ``max_strain > 0`` each frame is first strained as in :func:`strain` (normal and shear components
    bounded by ``max_strain``), then rattled.

    info: ``rattle_amplitude_A``; ``strain_voigt`` when ``max_strain > 0``.
    """
    rng = np.random.default_rng(seed)
    frames = []
    for amplitude in amplitudes_A:
        for _ in range(n_per_amplitude):
            frame = _fresh(atoms)
            if max_strain > 0:
                eps = _random_strain(rng, max_strain, max_strain)
                _apply_strain(frame, eps)
                frame.info["strain_voigt"] = strain_to_voigt(eps)
            frame.positions += rng.normal(0.0, amplitude, (len(frame), 3))
            frame.info["rattle_amplitude_A"] = float(amplitude)
            frames.append(frame)
    return frames


def _displaced_forces(atoms, calc, delta_A):
    """Forces (eV/A) for each atom and Cartesian direction displaced by +delta and -delta.

    Returns an array of shape (2, 3N, N, 3): [sign, displaced coordinate, atom, component].
    """
    work = atoms.copy()
    work.calc = calc
    reference = atoms.get_positions()
    n = len(atoms)
    out = np.empty((2, 3 * n, n, 3))
    for k in range(3 * n):
        for s, step in enumerate((delta_A, -delta_A)):
            positions = reference.copy()
            positions[k // 3, k % 3] += step
            work.set_positions(positions)
            out[s, k] = work.get_forces()
    work.calc = None
    return out


def force_constants(atoms, calc, delta_A=0.01):
    """Force-constant matrix d2E/du_i du_j (eV/A^2, shape (3N, 3N), index 3*atom + component) of ``atoms``
    by central differences of the forces of ``calc`` (6N force evaluations), symmetrised.

    Also returns the residual force on the reference (eV/A, shape (N, 3)), estimated to O(delta^2) as the
    mean of all displaced forces.
    """
    forces = _displaced_forces(atoms, calc, delta_A)
    n = len(atoms)
    hessian = -(forces[0] - forces[1]).reshape(3 * n, 3 * n) / (2.0 * delta_A)
    return 0.5 * (hessian + hessian.T), forces.mean(axis=(0, 1))


def _translations(masses):
    """Orthonormal mass-weighted rigid translations, shape (3N, 3)."""
    basis = np.kron(np.sqrt(masses)[:, None], np.eye(3))
    return basis / np.linalg.norm(basis, axis=0)


def _eigenvalues_to_THz(eigenvalues):
    """Frequencies (THz) of mass-weighted Hessian eigenvalues (eV/(A^2 amu)); negative for imaginary."""
    omega_per_fs = np.sqrt(np.abs(eigenvalues)) * units.fs
    return np.sign(eigenvalues) * omega_per_fs * 1e3 / (2.0 * np.pi)


def _THz_to_eigenvalues(frequencies_THz):
    """Inverse of :func:`_eigenvalues_to_THz`: eigenvalues in eV/(A^2 amu)."""
    omega = 2.0 * np.pi * np.asarray(frequencies_THz) * 1e-3 / units.fs
    return np.sign(frequencies_THz) * omega**2


def harmonic_modes(atoms, calc, delta_A=0.01):
    """Harmonic (supercell Gamma-point) modes of ``atoms`` under ``calc``.

    The mass-weighted Hessian ``M^-1/2 H M^-1/2`` is diagonalised after the rigid translations are
    projected out, which makes them exact zero modes orthogonal to all others; a Hessian that is not
    translation invariant (acoustic sum rule violated beyond ``MODE_TOLERANCE``) is reported with a warning.

    Returns ``(frequencies_THz, eigenvectors)``: 3N frequencies in ascending order of the eigenvalue
    (imaginary ones negative) and the orthonormal mass-weighted eigenvectors as columns, shape (3N, 3N).
    A Cartesian displacement (A) of mode k is ``eigenvectors[:, k] / sqrt(m)`` with m per coordinate (amu).
    """
    hessian, residual = force_constants(atoms, calc, delta_A)
    return _modes_from_hessian(hessian, atoms.get_masses(), residual)


def _modes_from_hessian(hessian, masses, residual):
    """Frequencies (THz) and mass-weighted eigenvectors of a Cartesian Hessian, translations projected out."""
    inv_sqrt_m = np.repeat(masses, 3) ** -0.5
    dynamical = hessian * inv_sqrt_m[:, None] * inv_sqrt_m[None, :]
    scale = np.abs(np.linalg.eigvalsh(dynamical)).max()
    trans = _translations(masses)
    violation = np.linalg.norm(dynamical @ trans, axis=0).max() / scale
    if violation > MODE_TOLERANCE:
        warnings.warn(f"the Hessian is not translation invariant (relative residual {violation:.1e}); "
                      "rigid translations are projected out", stacklevel=3)
    if np.abs(residual).max() > MAX_REFERENCE_FORCE:
        warnings.warn(f"the reference is not relaxed (max force {np.abs(residual).max():.3f} eV/A); "
                      "the harmonic modes are those of a non-stationary point", stacklevel=3)
    projector = np.eye(len(dynamical)) - trans @ trans.T
    eigenvalues, eigenvectors = np.linalg.eigh(projector @ dynamical @ projector)
    return _eigenvalues_to_THz(eigenvalues), eigenvectors


def _retained_modes(frequencies_THz, eigenvectors):
    """Drop the three modes of smallest |eigenvalue| (rigid translations) and check that the rest are stable.

    Returns (eigenvalues in eV/(A^2 amu), eigenvectors as columns) of the retained 3N - 3 modes.
    Raises ValueError if a retained mode is imaginary or soft (the structure is not at a minimum).
    """
    eigenvalues = _THz_to_eigenvalues(frequencies_THz)
    order = np.argsort(np.abs(eigenvalues))
    dropped, kept = order[:3], np.sort(order[3:])
    tolerance = MODE_TOLERANCE * np.abs(eigenvalues).max()
    if np.abs(eigenvalues[dropped]).max() > tolerance:
        warnings.warn(f"the translational modes are not ~0: {frequencies_THz[dropped]} THz", stacklevel=3)
    if eigenvalues[kept].min() <= tolerance:
        raise ValueError(f"the structure is not at a minimum of the calculator: lowest mode "
                         f"{frequencies_THz[kept].min():.3f} THz (negative = imaginary); relax it first")
    return eigenvalues[kept], eigenvectors[:, kept]


def normal_modes(atoms, calc, temperature_K=300.0, n_frames=10, seed=0, delta_A=0.01):
    """Classical harmonic thermal displacements of the crystal (normal-mode sampling).

    The 3N - 3 non-translational modes of :func:`harmonic_modes` are excited independently:
    ``u = M^-1/2 sum_k c_k sqrt(kB T) / omega_k e_k`` with ``c_k ~ N(0, 1)``, so that each mode carries
    ``kB T / 2`` of harmonic potential energy on average.  The displacements have no rigid translation.
    ``delta_A`` is the finite-difference step (A) of the Hessian.

    info: ``normal_mode_temperature_K``, ``harmonic_energy_eV`` (the frame's harmonic potential energy
    above the reference, 0.5 u^T H u).
    """
    frequencies, eigenvectors = harmonic_modes(atoms, calc, delta_A)
    eigenvalues, vectors = _retained_modes(frequencies, eigenvectors)
    rng = np.random.default_rng(seed)
    amplitudes = rng.standard_normal((n_frames, len(eigenvalues))) * np.sqrt(units.kB * temperature_K / eigenvalues)
    displacements = (amplitudes @ vectors.T) / np.sqrt(np.repeat(atoms.get_masses(), 3))
    energies = 0.5 * (amplitudes**2 * eigenvalues).sum(axis=1)
    frames = []
    for u, energy in zip(displacements, energies):
        frame = _fresh(atoms)
        frame.positions += u.reshape(-1, 3)
        frame.info.update(normal_mode_temperature_K=float(temperature_K), harmonic_energy_eV=float(energy))
        frames.append(frame)
    return frames
