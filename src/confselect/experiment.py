"""Experimental reference data shipped with the package: densities, self-diffusion coefficients and ionic
conductivities of molten salts, as published correlations with their temperature ranges, uncertainties and
sources (``data/experiment.yaml``).

A system names its entry with ``systems.<name>.experiment`` (default: the system's own name, if the data
has it).  Every value comes with the citation of the correlation it was computed from, and a value outside
the correlation's measured range says so.

Correlation forms (T in K, R = 8.314462618 J/(mol K)):
    linear       value = a + b T
    quadratic    value = a + b T + c T^2
    arrhenius    value = prefactor exp(-activation_J_mol / (R T))
    point        one measured value at T_K (with its absolute uncertainty); it applies at that temperature
                 only, so a comparison at another temperature has no experimental value

A correlation whose source states no measured range (``T_min_K``/``T_max_K`` null) or no uncertainty
(``uncertainty_percent`` null) gives ``in_range`` None or ``uncertainty`` NaN: unknown, never invented.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

DATA_FILE = Path(__file__).parent / "data" / "experiment.yaml"

#: The molar gas constant, J/(mol K): N_A k_B, both exact in the SI since 2019 (the value of
#: ``scipy.constants.R``).  Written out because the Snakefile evaluates these correlations when it is parsed,
#: in every cluster job too, and that should not import scipy.
GAS_CONSTANT_J_MOL_K = 6.02214076e23 * 1.380649e-23

#: The quantities an entry may hold and their units (the key names the unit).
QUANTITIES = ("density_g_cm3", "conductivity_S_cm", "self_diffusion_1e-9_m2_s")


@lru_cache(maxsize=1)
def load() -> dict:
    """All entries of the shipped data, by name."""
    import yaml

    with open(DATA_FILE) as handle:
        return yaml.safe_load(handle)


def experiment_for(name: str, system: dict) -> dict | None:
    """The entry of system ``name`` (its ``experiment`` key, else its own name), or None if it has none.

    Raises ValueError naming the key if ``systems.<name>.experiment`` names an entry the data lacks.
    """
    data = load()
    key = system.get("experiment")
    if key is None:
        return data.get(name)
    if key not in data:
        raise ValueError(f"systems.{name}.experiment: no entry {key!r} in {DATA_FILE.name} (have {sorted(data)})")
    return data[key]


def evaluate(correlation: dict, temperature_K: float) -> float:
    """The value of one correlation at ``temperature_K`` (NaN for a point measured at another temperature)."""
    form, T = correlation["form"], float(temperature_K)
    if form == "point":
        return float(correlation["value"]) if abs(T - correlation["T_K"]) < 0.5 else math.nan
    if form == "linear":
        return correlation["a"] + correlation["b"] * T
    if form == "quadratic":
        return correlation["a"] + correlation["b"] * T + correlation["c"] * T * T
    if form == "arrhenius":
        return correlation["prefactor"] * math.exp(-correlation["activation_J_mol"] / (GAS_CONSTANT_J_MOL_K * T))
    raise ValueError(f"unknown correlation form {form!r} (linear, quadratic, arrhenius)")


def value_at(correlation: dict, temperature_K: float) -> dict:
    """``{"value", "uncertainty" (absolute, same unit), "source", "in_range"}`` of a correlation at T."""
    value = evaluate(correlation, temperature_K)
    if correlation["form"] == "point":
        uncertainty = correlation.get("uncertainty")
        return {"value": value, "uncertainty": math.nan if uncertainty is None else float(uncertainty),
                "source": f"{correlation['source']} ({correlation['T_K']:g} K)", "in_range": math.isfinite(value)}
    low, high = correlation.get("T_min_K"), correlation.get("T_max_K")
    in_range = None if low is None or high is None else low - 1e-9 <= float(temperature_K) <= high + 1e-9
    source = correlation["source"] + (f" (extrapolated beyond {low:g}-{high:g} K)" if in_range is False else "")
    percent = correlation.get("uncertainty_percent")
    return {"value": value, "uncertainty": math.nan if percent is None else abs(value) * percent / 100.0,
            "source": source, "in_range": in_range}


def density_at(entry: dict, temperature_K: float) -> tuple[float, str]:
    """Experimental density, g/cm^3, at ``temperature_K`` and its source."""
    result = value_at(entry["density_g_cm3"], temperature_K)
    if not math.isfinite(result["value"]):
        raise ValueError(f"no experimental density at {temperature_K:g} K ({result['source']})")
    return result["value"], result["source"]


def transport_at(entry: dict, temperature_K: float) -> dict:
    """Experimental self-diffusion per species (10^-9 m^2/s) and conductivity (S/cm) at ``temperature_K``,
    each as :func:`value_at` gives it; quantities the entry lacks at that temperature are absent."""
    out = {}
    if "conductivity_S_cm" in entry:
        out["conductivity_S_cm"] = value_at(entry["conductivity_S_cm"], temperature_K)
    for species, correlation in entry.get("self_diffusion_1e-9_m2_s", {}).items():
        out[f"D_{species}_1e-9_m2_s"] = value_at(correlation, temperature_K)
    return {key: value for key, value in out.items() if math.isfinite(value["value"])}
