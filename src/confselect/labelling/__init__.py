"""Labellers (reference energies and forces for selected frames) and the label store."""

from .base import LabelFailure, LabellerSetupError

LABELLERS = ("classical", "xtb", "cp2k")


def make_labeller(name: str, settings: dict, threads: int = 1):
    """Build a labeller by name; ``settings`` as given by :func:`confselect.config.labeller_settings`."""
    if name == "classical":
        from ..classical import ClassicalTeacher

        return ClassicalTeacher(settings)
    if name == "xtb":
        from .xtb import XTBLabeller

        return XTBLabeller(threads=threads, **settings)
    if name == "cp2k":
        from .cp2k import CP2KLabeller

        # complete settings (the workflow's schema validation filled in the defaults); MPI ranks and OpenMP
        # threads are CP2K settings of their own (labelling.cp2k.ranks, .threads)
        return CP2KLabeller(**settings)
    raise LabellerSetupError(f"unknown labeller {name!r}; known: {LABELLERS}")


def labeller_cores(name: str, settings: dict) -> int:
    """Cores one label calculation uses, which its job books: CP2K's MPI ranks x OpenMP threads per rank
    (``labelling.cp2k.ranks``, ``.threads``); one for the classical and xTB labellers."""
    return int(settings["ranks"]) * int(settings["threads"]) if name == "cp2k" else 1


def failure_record(atoms, labeller: str, error: Exception):
    """An unlabelled copy of ``atoms`` whose info says why no label exists (never used for training)."""
    record = atoms.copy()
    record.calc = None
    record.info.update(label_status="failed", labeller=labeller, label_error=str(error)[:500])
    for key, value in getattr(error, "details", {}).items():
        if isinstance(value, (int, float, str, bool)):
            record.info[f"label_{key}"] = value
    return record


__all__ = ["LABELLERS", "LabelFailure", "LabellerSetupError", "failure_record", "labeller_cores", "make_labeller"]
