"""Running an external program (CP2K) under an optional MPI launcher, with a time limit that stops it whole.

The program runs in a process group of its own, so that a time limit, or a job that is itself being
stopped, ends the launcher and every rank it started, not only the process Python waited for.
``subprocess.run(timeout=...)`` kills only its direct child, which under ``mpirun`` or ``srun`` leaves the
ranks running; hence this small runner.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import signal
import string
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

#: Placeholders a launcher template may use.
LAUNCHER_FIELDS = ("ranks", "threads")
#: Seconds between SIGTERM and SIGKILL when a run is stopped.
GRACE_S = 10.0


def check_launcher(template: str | None) -> None:
    """Raise ValueError naming the placeholder if ``template`` uses one other than {ranks} and {threads}."""
    if not template:
        return
    for _, field, _, _ in string.Formatter().parse(template):
        if field is not None and field not in LAUNCHER_FIELDS:
            raise ValueError(f"launcher {template!r}: unknown placeholder {{{field}}}; known: {LAUNCHER_FIELDS}")


#: Prefixes of the variables by which an MPI library learns that a resource manager started it as a rank.
#: Open MPI 4.1 (Debian's CP2K) started alone inside a Slurm job step reads SLURM_NODELIST and SLURM_STEP_ID,
#: takes itself for a rank launched by ``srun``, and aborts ("direct launched using srun") where it was built
#: without Slurm's PMI: every label of a workflow run under the Slurm profile failed so.
LAUNCH_ENV_PREFIXES = ("SLURM_", "PMI_", "PMIX_")


def singleton_environment(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without the resource manager's launch variables: a program started without a launcher runs as
    one process of its own, not as a rank of the job step it happens to run in."""
    return {key: value for key, value in env.items() if not key.startswith(LAUNCH_ENV_PREFIXES)}


def launch_command(launcher: str | None, ranks: int, threads: int, program: Sequence[str]) -> list[str]:
    """``program`` behind the launcher template (e.g. ``mpirun -np {ranks}``); the program alone without one."""
    if not launcher:
        return list(program)
    check_launcher(launcher)
    return shlex.split(launcher.format(ranks=ranks, threads=threads)) + list(program)


@dataclasses.dataclass(frozen=True)
class ProcessResult:
    """How a run ended: exit code (negative: killed by that signal), timeout, or why it could not start."""

    command: tuple[str, ...]
    returncode: int | None
    timed_out: bool
    start_error: str | None
    wall_time_s: float

    @property
    def signal(self) -> int | None:
        return -self.returncode if self.returncode is not None and self.returncode < 0 else None


class _StopsChildOnSignal:
    """While active, SIGTERM/SIGINT/SIGHUP to this process first stop the child's process group, then act as
    they did before (a Snakemake or Slurm job being stopped must not leave CP2K running)."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

    def __init__(self, process: subprocess.Popen):
        self.process = process
        self.previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        # No Popen.wait() here: the interrupted code may be inside one, holding its lock.
        _signal_group(self.process, signal.SIGTERM)
        time.sleep(2.0)
        _signal_group(self.process, signal.SIGKILL)
        self.__exit__()
        os.kill(os.getpid(), signum)


def stop_group(process: subprocess.Popen, grace_s: float = GRACE_S) -> None:
    """SIGTERM to the process group, then SIGKILL to whatever is left of it after ``grace_s`` (ranks that
    a launcher left behind included)."""
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    _signal_group(process, signal.SIGKILL)
    process.wait()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run_program(
    command: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    timeout_s: float | None,
    stdout_path: Path,
    stderr_path: Path,
) -> ProcessResult:
    """Run ``command`` in ``cwd`` with stdout and stderr to files; stop the whole group at ``timeout_s``."""
    start = time.perf_counter()
    with open(stdout_path, "w") as out, open(stderr_path, "w") as err:
        try:
            process = subprocess.Popen(
                list(command), cwd=cwd, env=dict(env), stdout=out, stderr=err, start_new_session=True
            )
        except OSError as error:  # launcher or program missing, not executable
            return ProcessResult(tuple(command), None, False, f"{command[0]}: {error.strerror or error}",
                                 time.perf_counter() - start)
        timed_out = False
        with _StopsChildOnSignal(process):
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                stop_group(process)
    return ProcessResult(tuple(command), process.returncode, timed_out, None, time.perf_counter() - start)
