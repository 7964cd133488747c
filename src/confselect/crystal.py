"""Crystal properties of any ASE calculator, for comparing trained models with their classical teacher.

Every function takes an ASE calculator that returns energy (eV), forces (eV/A) and, where elastic
constants are asked for, stress (eV/A^3, ASE sign convention). The teacher (LAMMPS through ASE's
``LAMMPSlib``) and a trained model's ASE calculator therefore go through exactly the same code, and
:func:`relative_errors` compares the two results column by column.

Units: eV, A, amu; moduli in GPa; phonon frequencies in THz (imaginary modes reported as negative).
"""

from __future__ import annotations

import itertools
import time
import warnings

import numpy as np
from ase import units
from ase.eos import EquationOfState
from ase.optimize import BFGS

#: The observables :func:`crystal_properties` can compute, each by the function of the same section name.
OBSERVABLES = ("eos", "elastic", "phonons", "vacancy")
RELATIVE_COLUMNS = {
    "lattice_constant_rel_error": ("eos", "lattice_constant_A"),
    "bulk_modulus_rel_error": ("eos", "bulk_modulus_GPa"),
    "C11_rel_error": ("elastic", "C11_GPa"),
    "C12_rel_error": ("elastic", "C12_GPa"),
    "C44_rel_error": ("elastic", "C44_GPa"),
    "vacancy_formation_energy_rel_error": ("vacancy", "vacancy_formation_energy_eV"),
}
#: Summary columns of a crystal system (blank for liquids): relative errors and the phonon RMS error.
CRYSTAL_COLUMNS = (*RELATIVE_COLUMNS, "phonon_rms_error_THz")
MAX_RELAX_STEPS = 2000
# sqrt(eV / (A^2 amu)) (angular frequency) to THz.
OMEGA_TO_THZ = np.sqrt(units._e / units._amu) * 1e10 / (2.0 * np.pi) / 1e12


def _with_calc(atoms, calc):
    """A copy of ``atoms`` carrying ``calc``."""
    work = atoms.copy()
    work.calc = calc
    return work


def _strained(atoms, calc, deformation):
    """A copy of ``atoms`` whose cell and positions are mapped by the 3x3 ``deformation`` (x' = F x)."""
    work = _with_calc(atoms, calc)
    work.set_cell(atoms.cell.array @ np.asarray(deformation).T, scale_atoms=True)
    return work


def _relax(atoms, fmax_eV_A):
    """Relax the ions of ``atoms`` in place at fixed cell until every |force| is below ``fmax_eV_A`` (eV/A)."""
    if np.linalg.norm(atoms.get_forces(), axis=1).max() < fmax_eV_A:
        return
    converged = BFGS(atoms, logfile=None).run(fmax=fmax_eV_A, steps=MAX_RELAX_STEPS)
    if not converged:
        raise RuntimeError(f"ionic relaxation did not reach fmax {fmax_eV_A} eV/A in {MAX_RELAX_STEPS} steps")


def equation_of_state(atoms, calc, lattice_constant_A, strain_range=0.04, n_points=9) -> dict:
    """Birch-Murnaghan fit of E(V) over isotropic linear strains in [-strain_range, +strain_range].

    ``atoms`` is a cubic conventional (super)cell built with ``lattice_constant_A`` (A). Ions are not
    relaxed. Returns the fitted lattice constant (A), bulk modulus (GPa), equilibrium volume (A^3/atom),
    minimum energy (eV/atom) and the scanned volumes (A^3/atom) and energies (eV/atom). Raises
    ValueError when the fitted minimum lies outside the scanned volumes (``lattice_constant_A`` too far
    off) or the fit fails.
    """
    n = len(atoms)
    volumes, energies = [], []
    for eps in np.linspace(-strain_range, strain_range, n_points):
        work = _strained(atoms, calc, (1.0 + eps) * np.eye(3))
        volumes.append(work.get_volume() / n)
        energies.append(work.get_potential_energy() / n)
    try:
        with warnings.catch_warnings():  # ASE warns about a minimum outside the scan: refused below
            warnings.simplefilter("ignore", UserWarning)
            v0, e0, b = EquationOfState(volumes, energies, eos="birchmurnaghan").fit()
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"equation-of-state fit failed around a = {lattice_constant_A} A: {err}") from None
    if not min(volumes) <= v0 <= max(volumes):
        raise ValueError(
            f"fitted equilibrium volume {v0:.4f} A^3/atom lies outside the scanned range "
            f"[{min(volumes):.4f}, {max(volumes):.4f}]: lattice_constant_A = {lattice_constant_A} A is too "
            f"far from equilibrium; pass a better estimate or a larger strain_range"
        )
    v_in = atoms.get_volume() / n
    return {
        "lattice_constant_A": float(lattice_constant_A * (v0 / v_in) ** (1.0 / 3.0)),
        "bulk_modulus_GPa": float(b / units.GPa),
        "equilibrium_volume_A3_per_atom": float(v0),
        "minimum_energy_eV_per_atom": float(e0),
        "volumes_A3_per_atom": [float(v) for v in volumes],
        "energies_eV_per_atom": [float(e) for e in energies],
    }


def is_cubic_cell(cell, tol=1e-6) -> bool:
    """True when the cell is a cube with its edges along x, y and z (so Voigt axes are cubic axes)."""
    cell = np.asarray(cell)
    lengths = np.diag(cell)
    return bool(np.abs(cell - np.diag(lengths)).max() <= tol * lengths.max()
                and np.ptp(lengths) <= tol * lengths.max() and lengths.min() > 0)


def _stress_derivative(atoms, calc, voigt_index, strain, relax_ions, fmax_eV_A):
    """Central difference d(stress)/d(strain) (Voigt 6-vector, eV/A^3) for one Voigt strain component.

    Shear components use the engineering strain: eps_ij = eps_ji = strain / 2.
    """
    i, j = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)][voigt_index]
    stresses = []
    for sign in (1.0, -1.0):
        eps = np.zeros((3, 3))
        eps[i, j] += sign * strain / (2.0 if i != j else 1.0)
        eps[j, i] = eps[i, j]
        work = _strained(atoms, calc, np.eye(3) + eps)
        if relax_ions:
            _relax(work, fmax_eV_A)
        stresses.append(work.get_stress(voigt=True))
    return (stresses[0] - stresses[1]) / (2.0 * strain)


def cubic_elastic_constants(atoms, calc, strain=0.005, relax_ions=True, fmax_eV_A=1e-3) -> dict:
    """C11, C12 and C44 (GPa) of a cubic crystal at the cell given, from central differences of the stress.

    ASE's stress is (1/V) dE/d(strain), positive in tension, so C_ij = d(stress_i)/d(strain_j). With
    ``relax_ions`` the ions are relaxed at each strained cell (needed for crystals whose atoms are not
    inversion centres, e.g. diamond). Symmetry-equivalent components are averaged: C11 over xx, yy, zz;
    C12 over the six off-diagonal normal responses; C44 over yz, xz, xy. The cell must be cubic and
    axis-aligned (ValueError otherwise); pass the equilibrium cell for zero-pressure constants.
    """
    if not is_cubic_cell(atoms.cell.array):
        raise ValueError("cubic_elastic_constants needs a cubic cell with edges along x, y and z")
    c = np.array([_stress_derivative(atoms, calc, k, strain, relax_ions, fmax_eV_A) for k in range(6)]).T
    off_diagonal = [c[i, j] for i in range(3) for j in range(3) if i != j]
    return {
        "C11_GPa": float(np.mean(np.diag(c)[:3]) / units.GPa),
        "C12_GPa": float(np.mean(off_diagonal) / units.GPa),
        "C44_GPa": float(np.mean(np.diag(c)[3:]) / units.GPa),
        "strain": float(strain),
    }


def _special_points(bandpath):
    """Path coordinate(s) of every special point of ``bandpath``: {label: [x, ...]} (labels recur)."""
    _, xs, labels = bandpath.get_linear_kpoint_axis()
    points = {}
    for label, x in zip(labels, xs):
        points.setdefault(label, []).append(float(x))
    return points


def force_constants(primitive, calc, supercell=(4, 4, 4), delta_A=0.01):
    """Force constants (eV/A^2) by central finite displacements of each primitive atom in a supercell.

    Returns (phi, supercell_atoms) with phi[a, c, j, d] = d^2 E / du_{a,c} du_{j,d}, a over the primitive
    atoms (the first block of ``primitive.repeat``), j over the supercell; the acoustic sum rule is
    imposed on the self terms.
    """
    sc = primitive.repeat(tuple(supercell))
    sc.calc = calc
    reference = sc.positions.copy()
    n = len(primitive)
    phi = np.zeros((n, 3, len(sc), 3))
    for a in range(n):
        for c in range(3):
            forces = []
            for sign in (1.0, -1.0):
                displaced = reference.copy()
                displaced[a, c] += sign * delta_A
                sc.positions = displaced
                forces.append(sc.get_forces())
            phi[a, c] = -(forces[0] - forces[1]) / (2.0 * delta_A)
    sc.positions = reference
    for a in range(n):
        phi[a, :, a, :] -= phi[a].sum(axis=1)
    return phi, sc


def _image_vectors(n_prim, sc, tol_A=1e-4):
    """Minimum-image pair vectors r_j + T - r_a (A) and their weights (1/multiplicity), shapes (n, N, 125[, 3])."""
    shifts = np.array(list(itertools.product(range(-2, 3), repeat=3))) @ sc.cell.array
    vectors = sc.positions[None, :, None, :] + shifts[None, None] - sc.positions[:n_prim, None, None, :]
    distances = np.linalg.norm(vectors, axis=-1)
    nearest = distances <= distances.min(axis=2, keepdims=True) + tol_A
    return vectors, nearest / nearest.sum(axis=2, keepdims=True)


def _frequencies_THz(phi, vectors, weights, masses, q_cart):
    """Ascending phonon frequencies (THz, imaginary as negative) at Cartesian q (1/A, 2 pi included)."""
    n = len(masses)
    phase = np.sum(weights * np.exp(1j * vectors @ q_cart), axis=2)  # (n, N)
    d = (phi * phase[:, None, :, None]).reshape(3 * n, -1, n, 3).sum(axis=1).reshape(3 * n, 3 * n)
    inv_sqrt_m = np.repeat(1.0 / np.sqrt(masses), 3)
    d = d * np.outer(inv_sqrt_m, inv_sqrt_m)
    omega2 = np.linalg.eigvalsh(0.5 * (d + d.conj().T))  # eV / (A^2 amu)
    return np.sign(omega2) * np.sqrt(np.abs(omega2)) * OMEGA_TO_THZ


def phonon_frequencies(primitive, calc, supercell=(4, 4, 4), delta_A=0.01, path=None, npoints=60) -> dict:
    """Phonon band structure (THz) from finite-displacement force constants (displacement ``delta_A``, A).

    ``path`` is a special-point string such as "GXWKGLUWLK,UX"; by default the lattice's standard path
    from ``primitive.cell.bandpath()``. Returns the path, the number of q-points, frequencies_THz
    (npoints x 3N_prim, ascending per q, imaginary modes negative), the path coordinate x of each q-point
    (1/A, 2 pi included) and the x values of each special point ({label: [x, ...]}, labels can recur).

    ase.phonons.Phonons is not used: it Fourier-interpolates without minimum-image weighting, which for
    Cu_u3 (EAM, force constants reaching twice the cutoff) in a 4x4x4 supercell split the degenerate
    transverse branches along Gamma-X (0.29 vs 0.32 THz at 1/40 of the way, with one imaginary -0.08 THz
    mode); with the minimum-image weighting below they are degenerate (0.205 THz), and in a 6x6x6 supercell
    the Gamma-X slopes match sqrt(C44/rho) and sqrt(C11/rho) to 0.1 %. At commensurate q both agree.
    """
    bandpath = primitive.cell.bandpath(path, npoints=npoints)
    phi, sc = force_constants(primitive, calc, supercell, delta_A)
    vectors, weights = _image_vectors(len(primitive), sc)
    q_cart = 2.0 * np.pi * bandpath.kpts @ primitive.cell.reciprocal()
    freqs = [_frequencies_THz(phi, vectors, weights, primitive.get_masses(), q) for q in q_cart]
    x, _, _ = bandpath.get_linear_kpoint_axis()
    return {
        "path": bandpath.path,
        "q_points": int(len(bandpath.kpts)),
        "frequencies_THz": np.asarray(freqs).tolist(),
        "x": [float(v) for v in x],
        "special_points": _special_points(bandpath),
    }


def phonon_rms_error_THz(model: dict, reference: dict) -> float:
    """RMS (THz) over all q-points and branches of model minus reference phonon frequencies.

    Both results must share the path and number of q-points (ValueError otherwise).
    """
    if model["path"] != reference["path"] or model["q_points"] != reference["q_points"]:
        raise ValueError(
            f"phonon results differ in path or q-points: {model['path']!r}/{model['q_points']} vs "
            f"{reference['path']!r}/{reference['q_points']}"
        )
    f_model = np.asarray(model["frequencies_THz"], dtype=float)
    f_ref = np.asarray(reference["frequencies_THz"], dtype=float)
    if f_model.shape != f_ref.shape:
        raise ValueError(f"phonon results differ in shape: {f_model.shape} vs {f_ref.shape}")
    return float(np.sqrt(np.mean((f_model - f_ref) ** 2)))


def vacancy_formation_energy(atoms, calc, relax_ions=True, fmax_eV_A=1e-3) -> dict:
    """Vacancy formation energy (eV): E(N-1, same cell) - (N-1)/N E(N, perfect); atom 0 is removed.

    With ``relax_ions`` both the perfect and the defective cell are relaxed at fixed cell (the perfect
    one takes no step when its forces already vanish).
    """
    n = len(atoms)
    perfect = _with_calc(atoms, calc)
    defective = _with_calc(atoms, calc)
    del defective[0]
    if relax_ions:
        _relax(perfect, fmax_eV_A)
        _relax(defective, fmax_eV_A)
    e_f = defective.get_potential_energy() - (n - 1) / n * perfect.get_potential_energy()
    return {"vacancy_formation_energy_eV": float(e_f), "n_atoms": n}


def _value(result: dict, section: str, key: str) -> float:
    """result[section][key] as a float, NaN when the section or the entry is missing or null."""
    block = (result or {}).get(section) or {}
    value = block.get(key)
    return float("nan") if value is None else float(value)


def relative_errors(model: dict, reference: dict) -> dict:
    """Signed relative errors (model - reference) / reference of two :func:`crystal_properties` results.

    Also the phonon RMS error (THz). Any entry missing (or null) on either side gives NaN.
    """
    errors = {}
    for column, (section, key) in RELATIVE_COLUMNS.items():
        m, r = _value(model, section, key), _value(reference, section, key)
        errors[column] = (m - r) / r if r != 0 else float("nan")
    if (model or {}).get("phonons") and (reference or {}).get("phonons"):
        errors["phonon_rms_error_THz"] = phonon_rms_error_THz(model["phonons"], reference["phonons"])
    else:
        errors["phonon_rms_error_THz"] = float("nan")
    return errors


def _section(settings, name: str) -> dict:
    """Keyword arguments of one observable (``settings[name]``; the functions' own defaults fill the rest)."""
    values = dict((settings or {}).get(name) or {})
    if "supercell" in values:
        values["supercell"] = tuple(values["supercell"])
    return values


def crystal_properties(atoms, calc, lattice_constant_A, primitive=None, settings=None,
                       observables=OBSERVABLES) -> dict:
    """EOS, cubic elastic constants, phonons and vacancy formation energy of one calculator.

    ``atoms`` is a cubic conventional supercell and ``primitive`` (optional) a primitive cell, both built
    with the (possibly coarse) ``lattice_constant_A``; after the EOS (always computed: the others are taken
    at its lattice constant) both are scaled to the fitted lattice constant. ``settings`` maps "eos",
    "elastic", "phonons", "vacancy" to keyword arguments of the matching function; ``observables`` says
    which of the last three run. Properties that are not asked for or cannot be computed are null with the
    reason under "skipped"; wall_s is the total wall time (s). The result is JSON-serialisable.
    """
    unknown = set(observables) - set(OBSERVABLES) | set(settings or {}) - set(OBSERVABLES)
    if unknown:
        raise ValueError(f"unknown crystal observables or settings {sorted(unknown)}; known: {OBSERVABLES}")
    start = time.perf_counter()
    result = {"eos": None, "elastic": None, "phonons": None, "vacancy": None, "skipped": {}}
    try:
        result["eos"] = equation_of_state(atoms, calc, lattice_constant_A, **_section(settings, "eos"))
    except ValueError as err:  # a model with no minimum in the scan: a result (recorded), not a crash
        result["skipped"] = {name: f"no equation of state: {err}" for name in OBSERVABLES}
        result["wall_s"] = time.perf_counter() - start
        return result
    scale = result["eos"]["lattice_constant_A"] / lattice_constant_A
    equilibrium = _strained(atoms, calc, scale * np.eye(3))
    for name in ("elastic", "phonons", "vacancy"):
        if name not in observables:
            result["skipped"][name] = "not among validation.crystal.observables"
    if "elastic" in observables:
        if is_cubic_cell(atoms.cell.array):
            result["elastic"] = cubic_elastic_constants(equilibrium, calc, **_section(settings, "elastic"))
        else:
            result["skipped"]["elastic"] = "cell is not cubic with edges along x, y and z"
    if "phonons" in observables:
        if primitive is not None:
            scaled_primitive = _strained(primitive, None, scale * np.eye(3))
            result["phonons"] = phonon_frequencies(scaled_primitive, calc, **_section(settings, "phonons"))
        else:
            result["skipped"]["phonons"] = "no primitive cell given"
    if "vacancy" in observables:
        result["vacancy"] = vacancy_formation_energy(equilibrium, calc, **_section(settings, "vacancy"))
    result["wall_s"] = time.perf_counter() - start
    return result
