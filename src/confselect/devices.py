"""The torch device a job runs on, from a config value (``cpu``, ``cuda``, ``cuda:1``, ``gpu``, ``auto``),
and the check that a cluster profile sends to the GPU partition the rules whose configured device can use one.

One place decides, so that descriptors, selection, training and ML-MD read ``device`` the same way and a
request for CUDA on a machine without it stops at once with a message naming the config key, instead of a
torch traceback in the middle of a job.  Only :func:`resolve_device` and :func:`deterministic_training`
import torch; the routing check runs when the Snakefile is parsed and stays light.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

#: The rules that can put their work on a GPU, and the config key of each one's device.
DEVICE_KEYS = {
    "descriptors": "descriptors.device",
    "select": "selection.device",
    "train": "training.device",
    "ml_md": "validation.device",
    "crystal_properties": "validation.device",  # a crystal system's models: equation of state, phonons, ...
    "al_committee": "training.device",  # active learning (al_qbc): committee members are trained models
    "al_explore": "validation.device",  # and exploration is ML-MD
    "uncertainty": "training.device",  # validation.uncertainty: a committee per model
}

#: cuBLAS workspace setting that makes its matrix products deterministic (CUDA >= 10.2; torch's
#: "Reproducibility" notes).  Read when a cuBLAS handle is made, so it must be set before CUDA work starts.
CUBLAS_WORKSPACE_CONFIG = ":4096:8"


def resolve_device(requested: str, key: str = "device") -> str:
    """The torch device string for ``requested``; ``key`` names the config key in the error.

    ``auto`` is CUDA when torch sees a GPU, else the CPU; ``gpu`` is an alias of ``cuda``.
    """
    import torch

    name = str(requested).strip().lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "gpu":
        name = "cuda"
    if name == "cpu":
        return "cpu"
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            build = "a CPU-only torch build" if torch.version.cuda is None else f"torch built for CUDA {torch.version.cuda}"
            raise RuntimeError(
                f"{key} = {requested!r}, but CUDA is not available here ({build}, no visible GPU); "
                f"set {key}: cpu, or run this job where a GPU is visible"
            )
        index = int(name.split(":", 1)[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise RuntimeError(f"{key} = {requested!r}, but only {torch.cuda.device_count()} CUDA device(s) are visible")
        return name
    raise ValueError(f"{key} = {requested!r}: expected cpu, cuda, cuda:N, gpu or auto")


def deterministic_training(requested: str, key: str = "training.device") -> str:
    """Resolve ``requested`` (:func:`resolve_device`) for a training that must be reproducible on CUDA.

    Where the device may be CUDA, the cuBLAS workspace is fixed first (``CUBLAS_WORKSPACE_CONFIG``, unless
    the environment sets it), before torch touches CUDA: cuBLAS's products are deterministic only with it,
    and torch's deterministic mode raises at the first matrix product without it.  On CUDA, torch then picks
    deterministic kernels
    (``torch.use_deterministic_algorithms``) with ``warn_only``: an operation without a deterministic CUDA
    kernel logs a warning instead of ending the training (none of the training step's operations is on
    torch's list of such operations; ``tests/test_devices.py`` checks).  On the CPU nothing is changed: the
    training is bit-reproducible there already, and deterministic mode would only add work (it fills every
    uninitialised tensor).
    """
    import torch

    if may_use_cuda(requested):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE_CONFIG)
    device = resolve_device(requested, key)
    if device.startswith("cuda"):
        torch.use_deterministic_algorithms(True, warn_only=True)
    return device


def may_use_cuda(requested) -> bool:
    """True for device values that can put the work on a GPU (``cuda``, ``cuda:N``, ``gpu``, ``auto``)."""
    name = str(requested).strip().lower()
    return name in ("cuda", "gpu", "auto") or name.startswith("cuda:")


def requests_gpu(resources: Mapping) -> bool:
    """Whether a rule's Slurm resources ask for a GPU (``gpu: N`` with N > 0, or a ``gres`` naming gpu)."""
    # `in`, not .get(): Snakemake's Resources.get returns an empty Resource for a missing key
    gpu = _raw(resources["gpu"]) if "gpu" in resources else None
    gres = _raw(resources["gres"]) if "gres" in resources else None
    try:
        wants = gpu is not None and float(gpu) > 0
    except (TypeError, ValueError):
        wants = gpu is not None  # an expression (e.g. in `attempt`): taken as a request
    return wants or (gres is not None and "gpu" in str(gres).lower())


def routing_problems(config: dict, rule_resources: Mapping) -> tuple[list[str], list[str]]:
    """(warnings, errors) where the profile's ``set-resources`` and the configured devices disagree.

    ``rule_resources``: rule name -> its resource overrides (Snakemake's ``--set-resources``, i.e. the
    profile's ``set-resources``).  Checked only when some rule asks for a GPU, i.e. for a GPU-aware profile:

    * a rule that asks for a GPU while its configured device is ``cpu``: the GPU would sit idle (warning);
    * a rule whose device is ``cuda`` (not ``auto``) that asks for none: its job would stop on a node where
      no GPU is visible, after queueing (error).
    """
    gpu_rules = {rule for rule, resources in rule_resources.items() if requests_gpu(resources)}
    if not gpu_rules:
        return [], []
    warnings, errors = [], []
    for rule, key in DEVICE_KEYS.items():
        if not _has_jobs(rule, config):
            continue  # the rule has no job in this sweep
        section, name = key.split(".")
        device = str(config.get(section, {}).get(name, "cpu"))
        if rule in gpu_rules and not may_use_cuda(device):
            warnings.append(
                f"the profile's set-resources give rule {rule} a GPU, but {key} = {device!r}: the GPU would sit "
                f"idle (set {key}: cuda, or route {rule} to a CPU partition without a GPU request)"
            )
        elif rule not in gpu_rules and may_use_cuda(device) and device.lower() != "auto":
            errors.append(
                f"{key} = {device!r}, but the profile's set-resources give rule {rule} no GPU: its jobs would stop "
                f"where none is visible (add gpu: 1 and the GPU partition under set-resources: {rule}, or set "
                f"{key}: cpu)"
            )
    gpu_rules -= set(DEVICE_KEYS)
    for rule in sorted(gpu_rules):
        warnings.append(f"the profile's set-resources give rule {rule} a GPU, but {rule} runs on the CPU only")
    return warnings, errors


def _has_jobs(rule: str, config: Mapping) -> bool:
    """Whether ``rule`` has jobs in this sweep: crystal_properties where a crystal is swept, the
    active-learning rules where al_qbc is, uncertainty where validation.uncertainty is enabled."""
    if rule == "crystal_properties":
        return _sweeps_a_crystal(config)
    if rule.startswith("al_"):
        return "al_qbc" in config.get("sweep", {}).get("methods", [])
    if rule == "uncertainty":
        return bool(config.get("validation", {}).get("uncertainty", {}).get("enabled"))
    return True


def _sweeps_a_crystal(config: Mapping) -> bool:
    """Whether a swept system is validated as a crystal (rule crystal_properties has jobs)."""
    from .structures import system_phase

    systems = config.get("systems", {})
    return any(system_phase(systems[name]) == "crystal" for name in config.get("sweep", {}).get("systems", [])
               if name in systems)


def _raw(value):
    """A plain value, or a Snakemake ``Resource``'s value as written (``.raw``: a number, a string, or the
    text of an expression in ``attempt``, which has no value before a job exists)."""
    return getattr(value, "raw", value)
