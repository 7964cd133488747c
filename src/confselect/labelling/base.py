"""What every labeller shares: Atoms in, labelled Atoms out, or a failure record.

A labeller takes one configuration (``ase.Atoms`` with cell and pbc) and returns a copy carrying the
reference energy (eV) and forces (eV/A) in a ``SinglePointCalculator``, plus provenance in
``atoms.info`` (``labeller``, ``label_wall_time_s`` and method-specific keys such as ``scf_iterations``).
When the reference calculation cannot produce a trustworthy label (an SCF that does not converge, a
crashed executable) it raises :class:`LabelFailure`; the workflow turns that into a failure record and
never into a label.
"""

from __future__ import annotations


class LabelFailure(RuntimeError):
    """The reference calculation gave no trustworthy label; ``details`` goes into the failure record."""

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.details = details


class LabellerSetupError(RuntimeError):
    """The labeller cannot run on this machine (missing executable, basis or pseudopotential file)."""
