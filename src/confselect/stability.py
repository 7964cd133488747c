"""Whether an MD run stayed physical, and for how long: one set of criteria for models and teacher.

The limits are :class:`StabilityThresholds`; its values come from ``validation.stability`` in the config,
whose schema (``config/schema.yaml``) holds the only defaults (the class has none, so no second set can
drift apart).  ``docs/validation.md`` justifies each limit with the figures measured on the teacher and on
models that fail.  Units are ASE's: fs, K, eV, A.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np


@dataclass(frozen=True)
class StabilityThresholds:
    """Limits beyond which an MD run counts as failed (``validation.stability``).

    max_force_eV_A                   largest force on any atom, eV/A
    min_distance_A                   smallest allowed interatomic distance, A
    max_conserved_drift_meV_atom_ps  largest |slope| of the conserved quantity per atom against time,
                                     meV/atom/ps, fitted (least squares) from the start to each sample once
                                     ``drift_window_fs`` have passed (a shorter run is judged once, whole)
    drift_window_fs                  shortest stretch, fs, over which a drift is judged
    max_temperature_drift_K          largest |running mean of T - target|, K, the mean taken over
                                     ``temperature_window_fs`` (a thermostat that loses control, not the
                                     canonical fluctuation of the instantaneous T)
    temperature_window_fs            length of that running mean, fs
    rdf_onset_level                  g_ref(r) value marking the onset of the reference's first peak
    rdf_margin_A                     distance, A, below that onset from which the model is checked
    rdf_artefact_level               largest model g(r) tolerated below (onset - margin)
    max_volume_change                largest |running mean of V / V_start - 1| of an NPT run (dimensionless),
                                     the mean taken over ``volume_window_fs``: a runaway, not the barostat's
                                     fluctuation, which reaches 30 % instantaneously at 64 ions
    volume_window_fs                 length of that running mean, fs
    """

    max_force_eV_A: float
    min_distance_A: float
    max_conserved_drift_meV_atom_ps: float
    drift_window_fs: float
    max_temperature_drift_K: float
    temperature_window_fs: float
    rdf_onset_level: float
    rdf_margin_A: float
    rdf_artefact_level: float
    max_volume_change: float
    volume_window_fs: float

    @classmethod
    def from_config(cls, settings: dict) -> "StabilityThresholds":
        """From ``validation.stability`` (schema defaults filled in); an unknown or missing key is an error."""
        names = {f.name for f in fields(cls)}
        unknown, missing = set(settings) - names, names - set(settings)
        if unknown or missing:
            raise ValueError(f"validation.stability: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
        return cls(**{k: float(v) for k, v in settings.items()})

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class StabilityVerdict:
    """Outcome of :func:`stability_verdict`.

    stable            True if no criterion failed
    reason            what failed first and when ("" if stable); simultaneous failures joined by "; "
    time_survived_fs  time from the first sample to the last good sample before the first failure, fs
                      (the full length if stable, 0 if the first sample already fails)
    figures           what each criterion measured over the judged stretch: max_force_eV_A, min_distance_A,
                      conserved_drift_meV_atom_ps (whole run), max_temperature_drift_K,
                      max_volume_change (NPT)
    """

    stable: bool
    reason: str
    time_survived_fs: float
    figures: dict


def _first_index(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if len(hits) else None


def drift_slopes(t_fs: np.ndarray, energy_per_atom: np.ndarray) -> np.ndarray:
    """Least-squares slope of E/N against t over samples 0..k for every k, meV/atom/ps (NaN for k = 0).

    Written with running sums so all prefixes cost O(n); times and energies are taken relative to the
    first sample to limit cancellation.
    """
    t = (t_fs - t_fs[0]) / 1000.0
    e = (energy_per_atom - energy_per_atom[0]) * 1000.0
    n = np.arange(1, len(t) + 1)
    st, se = np.cumsum(t), np.cumsum(e)
    stt, ste = np.cumsum(t * t), np.cumsum(t * e)
    denominator = n * stt - st * st
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, (n * ste - st * se) / denominator, np.nan)


def running_mean(values: np.ndarray, t_fs: np.ndarray, window_fs: float) -> np.ndarray:
    """Mean of ``values`` over the last ``window_fs`` of samples ending at each sample (NaN before the
    first full window; a run shorter than the window gets its whole-run mean at its last sample)."""
    out = np.full(len(values), np.nan)
    if len(values) < 2:
        return out
    samples = max(1, int(round(window_fs / np.median(np.diff(t_fs))))) + 1
    if len(values) >= samples:
        prefix = np.concatenate([[0.0], np.cumsum(values)])
        out[samples - 1:] = (prefix[samples:] - prefix[:-samples]) / samples
    else:
        out[-1] = float(np.mean(values))
    return out


def rdf_artefact(rdf_model: dict, rdf_ref: dict, limits: StabilityThresholds) -> str:
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


def _per_sample_failures(series: dict, t, n_atoms, target_K, limits) -> tuple[dict, dict]:
    """``{sample index: [messages]}`` of every per-sample criterion's first failure, and the figures."""
    failures: dict[int, list[str]] = {}
    for name, values in series.items():
        k = _first_index(~np.isfinite(values))
        if k is not None:
            failures.setdefault(k, []).append(f"non-finite {name} at t = {t[k]:g} fs")
    checks = []
    force, distance = series["max force"], series["min distance"]
    checks.append((force > limits.max_force_eV_A, lambda k: f"max force {force[k]:.4g} eV/A > "
                   f"{limits.max_force_eV_A:g} eV/A at t = {t[k]:g} fs"))
    checks.append((distance < limits.min_distance_A, lambda k: f"min distance {distance[k]:.4g} A < "
                   f"{limits.min_distance_A:g} A at t = {t[k]:g} fs"))
    mean_t = running_mean(series["temperature"], t, limits.temperature_window_fs)
    offset = np.abs(mean_t - float(target_K))
    with np.errstate(invalid="ignore"):
        checks.append((offset > limits.max_temperature_drift_K, lambda k: (
            f"temperature drifted: mean {mean_t[k]:.4g} K over the last {limits.temperature_window_fs:g} fs is "
            f"{offset[k]:.3g} K from {target_K:g} K (limit {limits.max_temperature_drift_K:g} K) at t = {t[k]:g} fs")))
    slopes = drift_slopes(t, series["conserved energy"] / int(n_atoms))
    judged = (t - t[0]) >= limits.drift_window_fs
    if not judged.any() and len(t) >= 3:
        judged[-1] = True
    with np.errstate(invalid="ignore"):
        checks.append((judged & (np.abs(slopes) > limits.max_conserved_drift_meV_atom_ps), lambda k: (
            f"conserved-energy drift {slopes[k]:.3g} meV/atom/ps exceeds {limits.max_conserved_drift_meV_atom_ps:g} "
            f"meV/atom/ps over t = {t[0]:g}-{t[k]:g} fs")))
    volume = series.get("volume")
    if volume is not None:
        mean_v = running_mean(volume, t, limits.volume_window_fs)
        swell = np.abs(mean_v / volume[0] - 1.0)
        with np.errstate(invalid="ignore"):
            checks.append((swell > limits.max_volume_change, lambda k: (
                f"volume ran away: mean over the last {limits.volume_window_fs:g} fs is {100 * swell[k]:.0f} % "
                f"from the start (limit {100 * limits.max_volume_change:.0f} %) at t = {t[k]:g} fs")))
    for mask, message in checks:
        k = _first_index(mask)
        if k is not None:
            failures.setdefault(k, []).append(message(k))
    with np.errstate(invalid="ignore"):
        figures = {
            "max_force_eV_A": float(np.nanmax(force)),
            "min_distance_A": float(np.nanmin(distance)),
            "conserved_drift_meV_atom_ps": float(slopes[-1]) if len(slopes) > 2 else float("nan"),
            "max_temperature_drift_K": float(np.nanmax(offset)) if np.isfinite(offset).any() else float("nan"),
        }
        if volume is not None:
            figures["max_volume_change"] = float(np.nanmax(swell)) if np.isfinite(swell).any() else float("nan")
    return failures, figures


def stability_verdict(time_fs, temperature_K, conserved_eV, max_force_eV_A, min_distance_A, n_atoms: int,
                      target_temperature_K: float, thresholds: StabilityThresholds, rdf_model: dict | None = None,
                      rdf_ref: dict | None = None, volume_A3=None) -> StabilityVerdict:
    """Decide whether an MD run stayed physical, and for how long.

    Per-sample criteria (the first failing sample ends the run): any non-finite value; max force above
    ``max_force_eV_A``; minimum distance below ``min_distance_A``; the running mean temperature off target
    by more than ``max_temperature_drift_K``; conserved-energy drift (see :class:`StabilityThresholds`)
    above ``max_conserved_drift_meV_atom_ps``; with ``volume_A3`` (NPT) the running mean volume beyond
    ``max_volume_change`` of the start.  Whole-run criterion: model g(r) above ``rdf_artefact_level`` where the
    reference g(r) has not yet reached its first peak (both as :func:`confselect.observables.partial_rdfs`
    returns them).  An RDF artefact is not localised in time: alone, it leaves ``time_survived_fs`` whole.

    ``time_fs`` ... ``min_distance_A`` (and ``volume_A3``): per-sample series, fs, K, eV (the integrator's
    conserved quantity: total energy plus thermostat and barostat energy), eV/A, A (A^3).
    """
    series = {
        "time": np.asarray(time_fs, dtype=float),
        "temperature": np.asarray(temperature_K, dtype=float),
        "conserved energy": np.asarray(conserved_eV, dtype=float),
        "max force": np.asarray(max_force_eV_A, dtype=float),
        "min distance": np.asarray(min_distance_A, dtype=float),
    }
    if volume_A3 is not None:
        series["volume"] = np.asarray(volume_A3, dtype=float)
    n_samples = len(series["time"])
    if n_samples == 0 or any(v.shape != (n_samples,) for v in series.values()):
        raise ValueError("all per-sample series must be 1-D, non-empty and of equal length")
    if int(n_atoms) < 1:
        raise ValueError(f"n_atoms must be >= 1, got {n_atoms}")
    t = series["time"]
    if not np.all(np.diff(t) > 0):
        raise ValueError("time_fs must increase strictly")

    failures, figures = _per_sample_failures(series, t, n_atoms, target_temperature_K, thresholds)
    reasons, survived = [], float(t[-1] - t[0])
    if failures:
        first = min(failures)
        reasons = failures[first]
        survived = float(t[first - 1] - t[0]) if first > 0 else 0.0
    if rdf_model is not None and rdf_ref is not None:
        artefact = rdf_artefact(rdf_model, rdf_ref, thresholds)
        if artefact:
            reasons = reasons + [artefact]
    return StabilityVerdict(stable=not reasons, reason="; ".join(reasons), time_survived_fs=survived, figures=figures)
