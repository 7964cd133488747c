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
    """The reference calculation gave no trustworthy label; ``details`` goes into the failure record.

    ``transient`` says whether the failure says nothing about the configuration (a timeout, a signal, a
    missing launcher, a crash before any SCF verdict): such a failure is worth trying again and is not
    kept in the label store. A failure that is a verdict on the configuration (an SCF that did not
    converge with the retry, an abort on the input) is deterministic and is kept. ``details`` records
    ``transient`` too. The message is kept on one line: it goes into an extended-XYZ comment line.
    """

    def __init__(self, message: str, transient: bool = False, **details):
        message = " | ".join(part.strip() for part in str(message).splitlines() if part.strip())
        super().__init__(message)
        self.transient = bool(transient)
        self.details = {**details, "transient": self.transient}


class LabellerSetupError(RuntimeError):
    """The labeller cannot run on this machine (missing executable, basis or pseudopotential file)."""
