"""ML-MD with a trained SchNet potential: NVT runs that end early, not in a crash, when the model blows up.

The run uses ASE's Nose-Hoover chain integrator with SchNetPack's ``SpkCalculator``; every
``sample_interval_fs`` it records the frame and the series :func:`confselect.observables.stability_verdict`
judges (temperature, conserved energy, largest force, smallest interatomic distance).  A run stops as soon
as a sample is clearly unphysical (non-finite numbers, forces or distances beyond the thresholds), since
going on would only waste compute; the verdict then says why and how long the run survived.
"""

from __future__ import annotations

import numpy as np

from .progress import Progress


def spk_calculator(model_path, cutoff_A: float, device: str = "cpu"):
    """SchNetPack's ASE calculator for a saved model, in eV and A (SchNetPack defaults to kcal/mol).

    It also reports ``free_energy`` (= energy: no electronic entropy), which ASE's Nose-Hoover chain
    integrator asks for when it computes its conserved energy.
    """
    import schnetpack.transform as trn
    from schnetpack.interfaces import SpkCalculator

    class SpkCalculatorWithFreeEnergy(SpkCalculator):
        implemented_properties = [*SpkCalculator.implemented_properties, "free_energy"]

        def calculate(self, *args, **kwargs):
            super().calculate(*args, **kwargs)
            self.results["free_energy"] = self.results["energy"]

    return SpkCalculatorWithFreeEnergy(
        model=str(model_path),
        neighbor_list=trn.MatScipyNeighborList(cutoff=cutoff_A),
        energy_unit="eV",
        position_unit="Ang",
        device=device,
    )


def minimum_distance(atoms) -> float:
    """Smallest interatomic distance (A) under periodic boundaries (ASE's neighbour list)."""
    from ase.neighborlist import neighbor_list

    d = neighbor_list("d", atoms, 4.0)
    return float(d.min()) if len(d) else 4.0


def run_nvt(atoms, calc, temperature_K: float, timestep_fs: float, duration_fs: float, thermostat_damping_fs: float,
            sample_interval_fs: float, seed: int, max_force_eV_A: float, min_distance_A: float,
            progress_label: str | None = "ML-MD"):
    """Run NVT from ``atoms``; return (sampled frames, per-sample series dict, early-stop reason or "")."""
    from ase import units
    from ase.md.nose_hoover_chain import NoseHooverChainNVT
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

    atoms = atoms.copy()
    atoms.calc = calc
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=np.random.default_rng(seed))
    Stationary(atoms)
    dyn = NoseHooverChainNVT(
        atoms, timestep=timestep_fs * units.fs, temperature_K=temperature_K, tdamp=thermostat_damping_fs * units.fs
    )
    stride = max(1, int(round(sample_interval_fs / timestep_fs)))
    n_samples = int(duration_fs // (stride * timestep_fs))
    series = {k: [] for k in ("time_fs", "temperature_K", "energy_eV", "max_force_eV_A", "min_distance_A")}
    frames = []
    progress = Progress(progress_label, n_samples) if progress_label else None
    stop = ""

    def sample():
        forces = atoms.get_forces()
        frame = atoms.copy()
        frame.calc = None
        frame.info["time_fs"] = dyn.nsteps * timestep_fs
        frames.append(frame)
        series["time_fs"].append(dyn.nsteps * timestep_fs)
        series["temperature_K"].append(atoms.get_temperature())
        series["energy_eV"].append(dyn.get_conserved_energy())
        series["max_force_eV_A"].append(float(np.linalg.norm(forces, axis=1).max()))
        series["min_distance_A"].append(minimum_distance(atoms))

    sample()
    for k in range(n_samples):
        try:
            dyn.run(stride)
        except Exception as err:  # a model far outside its data can produce NaNs that break the integrator
            stop = f"integration failed: {err}"
            break
        sample()
        if progress:
            progress(k + 1, note=f"T = {series['temperature_K'][-1]:.0f} K")
        last = [series[key][-1] for key in series]
        if not np.all(np.isfinite(last)):
            stop = "non-finite values"
        elif series["max_force_eV_A"][-1] > max_force_eV_A:
            stop = "force above threshold"
        elif series["min_distance_A"][-1] < min_distance_A:
            stop = "atoms too close"
        if stop:
            break
    return frames, {k: np.asarray(v, dtype=float) for k, v in series.items()}, stop
