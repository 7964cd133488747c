"""The state point of every NVT validation run: a temperature and the density it is held at.

000 runs its NVT validation "at densities fixed to those of the compared experimental values".  Here the
density at each temperature comes from ``validation.state_point.density_source``: the teacher's mean NPT
density at that temperature (``reference_npt``, the default), the shipped experimental correlation
(``experiment``, :mod:`confselect.experiment`), or a configured number with its source (``configured``).
The start structure is the teacher's last NPT frame at that temperature, scaled isotropically to the
density, so models and reference start from the same equilibrated liquid at the same volume.
"""

from __future__ import annotations

# The temperature helpers below run when the Snakefile is parsed (in every cluster job too): numpy and
# :mod:`confselect.observables` (ASE, scipy) are imported inside the functions that need them.


def mass_density(atoms) -> float:
    """Density of ``atoms``, g/cm^3."""
    from .observables import AMU_PER_A3_IN_G_PER_CM3

    return float(atoms.get_masses().sum() / atoms.get_volume() * AMU_PER_A3_IN_G_PER_CM3)


def scaled_to_density(atoms, density_g_cm3: float):
    """A copy of ``atoms`` with cell and positions scaled isotropically to ``density_g_cm3``."""
    scaled = atoms.copy()
    scaled.calc = None
    factor = (mass_density(atoms) / float(density_g_cm3)) ** (1.0 / 3.0)
    scaled.set_cell(atoms.cell.array * factor, scale_atoms=True)
    return scaled


def temperature_key(temperature_K: float) -> str:
    """The key of a temperature in JSON maps: ``f"{T:g}"``."""
    return f"{float(temperature_K):g}"


def state_point_temperatures(validation: dict, pool_T_end_K: float) -> list[float]:
    """Every temperature an NVT or NPT validation run needs a state point at, sorted: the NPT scan's, the
    NVT run's and the stress run's (``validation.stress.temperature_K``, default the pool's highest)."""
    temperatures = {float(t) for t in validation["density"]["temperatures_K"]}
    temperatures.add(float(validation["md"]["temperature_K"]))
    if validation["stress"]["duration_fs"] > 0:
        temperatures.add(stress_temperature(validation, pool_T_end_K))
    return sorted(temperatures)


def stress_temperature(validation: dict, pool_T_end_K: float) -> float:
    """The stress run's temperature, K: ``validation.stress.temperature_K`` or the pool's highest."""
    configured = validation["stress"].get("temperature_K")
    return float(pool_T_end_K if configured is None else configured)


def target_density(temperature_K: float, reference_g_cm3: float, settings: dict, system: str,
                   experiment: dict | None) -> tuple[float, str]:
    """The NVT density at ``temperature_K`` and where it comes from (``validation.state_point``).

    ``reference_g_cm3``: the teacher's NPT density at that temperature; ``experiment``: the system's
    entry of the experimental data (:func:`confselect.experiment.experiment_for`), or None.
    """
    source = settings["density_source"]
    if source == "reference_npt":
        return float(reference_g_cm3), "reference NPT (teacher) at this temperature"
    if source == "experiment":
        from .experiment import density_at

        if experiment is None:
            raise ValueError(f"validation.state_point.density_source is experiment, but system {system} has no "
                             "experimental entry (systems.<name>.experiment)")
        rho, citation = density_at(experiment, temperature_K)
        return rho, f"experiment: {citation}"
    table = settings["densities_g_cm3"].get(system, {})
    key = temperature_key(temperature_K)
    if key not in table:
        raise ValueError(f"validation.state_point.densities_g_cm3.{system} has no density for {key} K")
    return float(table[key]), f"configured: {settings['source']}"


def state_points(npt_runs: dict, temperatures_K, settings: dict, system: str, experiment) -> dict:
    """Per temperature key: ``{"temperature_K", "density_g_cm3", "density_source", "frame"}`` from the
    teacher's NPT runs (``{key: {"density_g_cm3", "frames"}}``), the frame scaled to the target density."""
    out = {}
    for temperature in temperatures_K:
        run = npt_runs[temperature_key(temperature)]
        rho, source = target_density(temperature, run["density_g_cm3"], settings, system, experiment)
        frame = scaled_to_density(run["frames"][-1], rho)
        frame.info.update(temperature_K=float(temperature), density_g_cm3=rho, density_source=source)
        out[temperature_key(temperature)] = {"temperature_K": float(temperature), "density_g_cm3": rho,
                                             "density_source": source, "frame": frame}
    return out


def state_point_of(frames, temperature_K: float):
    """The start frame at ``temperature_K`` from the frames ``reference_npt`` wrote (one per temperature)."""
    for frame in frames:
        if abs(float(frame.info["temperature_K"]) - float(temperature_K)) < 1e-6:
            start = frame.copy()
            start.calc = None
            return start
    have = sorted(float(f.info["temperature_K"]) for f in frames)
    raise ValueError(f"no state point at {temperature_K:g} K (have {have} K)")


def describe(frame) -> dict:
    """The ``state_point`` record of an output: temperature, density and its source."""
    return {"temperature_K": float(frame.info["temperature_K"]), "density_g_cm3": mass_density(frame),
            "density_source": str(frame.info["density_source"])}


def pressure_mean_and_sem(frames, n_blocks: int = 5) -> tuple[float, float]:
    """Mean pressure of frames (``info["pressure_bar"]``), bar, and its block-average error."""
    import numpy as np

    from .observables import block_average

    values = np.array([float(f.info["pressure_bar"]) for f in frames])
    return block_average(values, min(n_blocks, len(values)))
