"""The torch device a job runs on, from a config value (``cpu``, ``cuda``, ``cuda:1``, ``auto``).

One place decides, so that training and ML-MD read ``device`` the same way and a request for CUDA on a
machine without it stops at once with a message naming the config key, instead of a torch traceback in the
middle of a job.
"""

from __future__ import annotations


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
