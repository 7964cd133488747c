"""The labellers' set-up check (``labelling.check_setup``): can each swept system's labeller run here?

The Snakemake process that plans a run calls :func:`check_labellers` once, before any job; the jobs, which
parse the Snakefile again, do not.  The check loads the labeller (the LAMMPS module, tblite, or the CP2K
labeller with ASE's readers), so it runs in a child interpreter (``python -m confselect.setup_check``): the
planning process itself imports none of that.  The child needs the labeller's Python packages in the
Snakemake process's environment; where they are only installed for the jobs, the answer names the missing
module and ``labelling.check_setup: false`` turns the check off.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

_SRC = str(Path(__file__).resolve().parents[1])


def check_labellers(requests: list[dict]) -> list[str]:
    """Problems found, one line each naming the system (empty if every labeller can run).

    ``requests``: ``{"system", "labeller", "settings", "symbols"}`` per system, ``labeller`` and ``settings``
    as :func:`confselect.config.labeller_settings` gives them.
    """
    if not requests:
        return []
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_SRC, env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory(prefix="confselect-setup-check-") as tmp:
        answer = Path(tmp) / "problems.json"
        proc = subprocess.run([sys.executable, "-m", "confselect.setup_check", str(answer)],
                              input=json.dumps(requests), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env=env)
        if not answer.is_file():
            return [f"the labeller set-up check ({sys.executable} -m confselect.setup_check) failed with exit "
                    f"status {proc.returncode}: {proc.stdout.strip()[-1500:]}"]
        return json.loads(answer.read_text())


def check_teacher(system: dict, key: str) -> str | None:
    """One single point of the system's potential on its starting structure, in LAMMPS: an unknown pair
    style, an unreadable file or a species LAMMPS finds no parameters for is reported (with LAMMPS's own
    message) before any job, naming the key."""
    try:
        from confselect.classical import teacher_calculator
        from confselect.structures import build_structure

        atoms = build_structure(system, 0)
        atoms.calc = teacher_calculator(system)
        atoms.get_potential_energy()
    except ImportError as err:
        return f"{key}: the LAMMPS module cannot be loaded by the Snakemake process's Python ({err})"
    except Exception as err:  # LAMMPS raises plain Exception with its ERROR line
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return f"{key}: LAMMPS rejects pair_style {system['potential'].get('pair_style', 'born/coul/long')!r}: {first}"
    return None


def _check(requests: list[dict]) -> list[str]:
    """In the child: run the teacher potential of each system once, build each labeller and run its own
    ``check_setup``."""
    problems = []
    for request in requests:
        if request.get("teacher"):
            problem = check_teacher(request["teacher"], f"systems.{request['system']}.potential")
            if problem:
                problems.append(problem)
    try:
        from confselect.labelling import LabellerSetupError, make_labeller
    except ImportError as err:
        return problems + [f"confselect.labelling cannot be imported here ({err})"]
    for request in requests:
        where = f"Labeller {request['labeller']!r} of systems.{request['system']}"
        try:
            make_labeller(request["labeller"], request["settings"]).check_setup(request["symbols"])
        except LabellerSetupError as err:
            problems.append(f"{where} cannot run here: {err}")
        except (TypeError, ValueError) as err:  # settings the labeller's constructor rejects
            problems.append(f"{where}: labelling.{request['labeller']} settings rejected: {err}")
        except ImportError as err:
            problems.append(f"{where} cannot be loaded by the Snakemake process's Python ({sys.executable}): "
                            f"{err} (docs/cluster.md, 'The Snakemake process')")
    return problems


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(json.dumps(_check(json.load(sys.stdin))))
    sys.stdout.flush()
    os._exit(0)  # a LAMMPS instance left by a rejected command can crash the interpreter's teardown
