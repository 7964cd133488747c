"""SchNetPack's ASE calculator for a trained model (test-set errors; the MD itself runs in
:mod:`confselect.md_engine`)."""

from __future__ import annotations


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
    """Smallest interatomic distance (A) under periodic boundaries (ASE's neighbour list, 4 A search)."""
    from ase.neighborlist import neighbor_list

    d = neighbor_list("d", atoms, 4.0)
    return float(d.min()) if len(d) else 4.0
