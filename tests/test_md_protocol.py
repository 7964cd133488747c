"""The physics of the validation protocol with real engines: both thermostats reach their target temperature
with 3N - 3 degrees of freedom, and an NVT run at the reference's NPT density has the NPT pressure."""

import numpy as np
import pytest
import yaml
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from confselect.structures import random_melt
from confselect.classical import run_classical_npt, run_classical_nvt
from confselect.dynamics import kinetic_temperature, run_md
from confselect.observables import block_average
from confselect.state_point import mass_density, pressure_mean_and_sem, scaled_to_density

from conftest import REPO

SYSTEM = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["systems"]["NaCl"]


class SoftSpheres(Calculator):
    """E = eps sum_pairs (sigma / r)^12 under the minimum image of a cubic box: a cheap fluid whose pair
    forces conserve total momentum (ASE's EMT costs 10 ms a step for 8 atoms here, this 0.05 ms)."""

    implemented_properties = ["energy", "free_energy", "forces"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        box = atoms.cell.lengths()[0]
        d = atoms.positions[None, :, :] - atoms.positions[:, None, :]
        d -= box * np.rint(d / box)
        r2 = (d**2).sum(-1) + np.eye(len(atoms))
        inv12 = (3.0**2 / r2) ** 6 * (1 - np.eye(len(atoms)))
        self.results["energy"] = self.results["free_energy"] = 0.01 * 0.5 * inv12.sum()
        self.results["forces"] = -((0.01 * 12 * inv12 / r2)[:, :, None] * d).sum(axis=1)


def test_ml_engine_thermostat_counts_3n_minus_3_degrees_of_freedom():
    """8 soft spheres with zero total momentum have 21 kinetic degrees of freedom.  ASE's chain alone
    thermostats 24, which would put the mean 2K / (21 kB) at 600 * 24/21 = 686 K; counted as LAMMPS does,
    it is 600 K within its block error (~10 K over 40 ps)."""
    grid = np.array([[i, j, k] for i in range(2) for j in range(2) for k in range(2)], dtype=float) * 4.0 + 1.0
    atoms = Atoms("Ar8", positions=grid, cell=[8.0] * 3, pbc=True)
    result = run_md(atoms, SoftSpheres(), "nvt", steps=8000, timestep_fs=5.0, temperature_K=600.0,
                    thermostat_damping_fs=100.0, sample_every=5, seed=3)
    assert result.stop_reason == ""
    np.testing.assert_allclose(np.sum(atoms.get_momenta(), axis=0), 0.0, atol=1e-8)  # momentum stays zero
    late = result.series["temperature_K"][result.series["time_fs"] >= 5000.0]
    mean, sem = block_average(late, 10)
    assert 0 < sem < 20.0
    assert abs(mean - 600.0) < 3.5 * sem, (mean, sem)
    assert abs(mean - 600.0 * 24 / 21) > 3.5 * sem  # the test separates the two counts
    assert kinetic_temperature(atoms) == pytest.approx(2 * atoms.get_kinetic_energy() / (21 * 8.617333262e-5))


def test_lammps_teacher_thermostat_reaches_its_target_with_3n_minus_3():
    """The teacher's fix nvt on 8 ions: the mean of LAMMPS's temperature (3N - 3) is 1300 K within error
    (1300 * 21/24 = 1138 K if 3N were thermostatted)."""
    melt = random_melt({"Na": 4, "Cl": 4}, 1.5, 3, 2.2)
    frames = []
    run_classical_nvt(SYSTEM, melt, 1300.0, 2.0, 60000.0, 100.0, 10.0, seed=0, on_frame=frames.append)
    temperature = np.array([f.info["temperature_K"] for f in frames[500:]])
    mean, sem = block_average(temperature, 10)
    assert abs(mean - 1300.0) < 3.5 * sem, (mean, sem)
    assert abs(mean - 1300.0 * 21 / 24) > 3.5 * sem


@pytest.fixture(scope="module")
def npt_at_1300():
    melt = random_melt({"Na": 32, "Cl": 32}, 1.5, 5, 2.2)
    frames = []
    run_classical_npt(SYSTEM, melt, 1300.0, 1.0, 2.0, 12000.0, 100.0, 1000.0, 20.0, seed=0, on_frame=frames.append)
    rho, rho_sem = block_average(np.array([mass_density(f) for f in frames[100:]]), 5)
    return frames, rho, rho_sem


def _nvt_pressure(start):
    frames = []
    run_classical_nvt(SYSTEM, start, 1300.0, 2.0, 12000.0, 100.0, 20.0, seed=1, on_frame=frames.append)
    return pressure_mean_and_sem(frames[100:])


def test_nvt_at_the_reference_npt_density_has_the_npt_pressure(npt_at_1300):
    """At the NPT mean density the NVT pressure is the 1 bar target within its error plus what the density's
    own error maps to (bulk modulus of the molten salt ~30 kbar; taken generously).  At the density of the
    1700 K end of the ramp (the old start), the same check fails by kilobars."""
    frames, rho, rho_sem = npt_at_1300
    pressure, sem = _nvt_pressure(scaled_to_density(frames[-1], rho))
    allowed = 3.0 * (sem + 30000.0 * rho_sem / rho)
    assert abs(pressure - 1.0) < allowed, (pressure, sem, rho_sem)
    wrong, _ = _nvt_pressure(scaled_to_density(frames[-1], 0.84 * rho))  # 1.14 / 1.357: the 1700 K density
    assert wrong < -allowed - 1.0
