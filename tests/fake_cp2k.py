"""Stand-ins for ``cp2k.psmp`` and an MPI launcher, for the labeller's failure paths.

``fake-cp2k -i <project>.inp -o <project>.out`` plays back the fixtures of tests/data/cp2k. What it does is
``$FAKE_CP2K_MODES``, a comma-separated list: the n-th run in a work directory takes the n-th mode (the last
one repeats), and every run appends its mode to ``.fake_runs`` there. Modes:

``ok:<release>``          the converged output (and forces file, if that release has one), exit 0; for
                          2026.2 the output with the forces printed in it
``corrupt_forces``        ``ok:2023.1`` with one digit of a force changed
``truncated_forces``      ``ok:2023.1`` with the forces file cut in its second row
``no_forces``             ``ok:2023.1`` without a forces file
``energy_ev``             ``ok:2023.1`` with the energy printed in [eV]
``noconv:<release>``      ``scf_not_converged.out`` of that release; 2023.1 carries on (exit 0, forces), later
                          releases abort (exit 1)
``abort``                 CP2K 2023.1's abort on an odd electron count without UKS, exit 1
``exit3``                 a partial output, exit 3
``kill``                  a partial output, then SIGKILL to itself
``sleep``                 a partial output, starts a child ``sleep`` (its pid in ``.fake_child``), waits

``fake-launcher [--opt=value ...] program ...`` writes its argv and ``OMP_NUM_THREADS`` as JSON to
``$FAKE_LAUNCHER_LOG`` and runs the program.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "cp2k"


def install(bin_dir: Path) -> Path:
    """Write ``fake-cp2k`` and ``fake-launcher`` into ``bin_dir`` (run by this interpreter); return it."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, role in (("fake-cp2k", "cp2k"), ("fake-launcher", "launcher")):
        script = bin_dir / name
        script.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
                          f"import fake_cp2k\nfake_cp2k.{role}(sys.argv[1:])\n")
        script.chmod(0o755)
    return bin_dir


def _partial(out: Path) -> None:
    lines = (DATA / "2023.1" / "label.out").read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:30]))


def cp2k(argv: list[str]) -> None:
    inp, out = Path(argv[argv.index("-i") + 1]), Path(argv[argv.index("-o") + 1])
    project = inp.stem
    forces = Path(f"{project}-forces-1_0.xyz")
    runs = Path(".fake_runs")
    done = runs.read_text().split() if runs.exists() else []
    modes = os.environ["FAKE_CP2K_MODES"].split(",")
    mode = modes[min(len(done), len(modes) - 1)]
    runs.write_text(" ".join([*done, mode]))
    kind, _, release = mode.partition(":")
    release = release or "2023.1"
    if kind in ("ok", "corrupt_forces", "truncated_forces", "no_forces", "energy_ev"):
        printed = DATA / release / "label.out"  # 2026.2: the forces are printed to the output, no file
        text = (printed if printed.exists() else DATA / release / "forces_in_output.out").read_text()
        if kind == "energy_ev":
            text = re.sub(r"energy \[a\.u\.\]:", "energy [eV]:", text)
        out.write_text(text)
        source = DATA / release / "label-forces-1_0.xyz"
        if kind != "no_forces" and source.exists():
            lines = source.read_text().splitlines(keepends=True)
            if kind == "corrupt_forces":
                lines[4] = lines[4].replace("0.00140992", "0.00170992")
            if kind == "truncated_forces":
                lines = lines[:5] + [lines[5][:30]]
            forces.write_text("".join(lines))
        sys.exit(0)
    if kind == "noconv":
        shutil.copyfile(DATA / release / "scf_not_converged.out", out)
        if release == "2023.1":
            shutil.copyfile(DATA / "2023.1" / "label-forces-1_0.xyz", forces)
            sys.exit(0)
        sys.exit(1)
    if kind == "abort":
        shutil.copyfile(DATA / "2023.1" / "abort.out", out)
        sys.exit(1)
    _partial(out)
    if kind == "exit3":
        sys.exit(3)
    if kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "sleep":
        child = subprocess.Popen(["sleep", "60"])
        Path(".fake_child").write_text(str(child.pid))
        time.sleep(60)
        sys.exit(0)
    raise SystemExit(f"fake-cp2k: unknown mode {mode!r}")


def launcher(argv: list[str]) -> None:
    options = [a for a in argv if a.startswith("--")]
    program = argv[len(options):]
    Path(os.environ["FAKE_LAUNCHER_LOG"]).write_text(json.dumps(
        {"argv": argv, "options": options, "program": program, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}
    ))
    os.execvp(program[0], program)
