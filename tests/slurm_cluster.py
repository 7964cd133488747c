"""A throw-away single-node Slurm cluster on this machine, for tests that submit real jobs.

Debian's slurmctld and slurmd (22.05) run as root in the foreground under this process, with
``AuthType=auth/none`` and ``CredType=cred/none`` (no munge) and no slurmdbd. Finished jobs stay visible
to ``squeue``/``scontrol`` for ``MinJobAge`` seconds and are written to a job-completion file
(``JobCompType=jobcomp/filetxt``), which ``sacct -c`` reads; :meth:`SlurmCluster.jobcomp_records` parses it.
A fake GPU (``Gres=gpu:1`` backed by /dev/null) lets a ``gpu`` partition accept ``--gpus=1`` jobs.

slurm.conf must live at /etc/slurm/slurm.conf: the slurm-jobstep executor removes ``SLURM_CONF`` from the
environment of the inner ``srun``. A configuration already there that this module did not write is moved
aside on start and put back on stop.

Usage::

    cluster = SlurmCluster(root, partitions={"main": {"default": True}, "cpu": {}, "gpu": {}})
    cluster.start()
    try:
        ...
    finally:
        cluster.stop()
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

CONF_DIR = Path("/etc/slurm")
MARKER = "# written by tests/slurm_cluster.py"
DAEMONS = ("slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo", "sacct", "srun")
APT_PACKAGES = ("slurmctld", "slurmd", "slurm-client")


def missing_programs() -> list[str]:
    return [p for p in DAEMONS + CLIENTS if shutil.which(p) is None and not Path("/usr/sbin", p).exists()]


def install_slurm(timeout_s: float = 600) -> str | None:
    """Install Debian's Slurm daemons and clients when missing; None on success, else the reason."""
    if not missing_programs():
        return None
    if os.geteuid() != 0:
        return f"Slurm is not installed ({', '.join(missing_programs())} missing) and installing it needs root"
    if shutil.which("apt-get") is None:
        return "Slurm is not installed and apt-get is not available"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *APT_PACKAGES]):
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return f"{' '.join(cmd)} timed out after {timeout_s:.0f} s"
        if done.returncode != 0:
            return f"{' '.join(cmd)} failed: {(done.stderr or done.stdout).strip()[-500:]}"
    still = missing_programs()
    return f"apt-get installed {APT_PACKAGES} but {still} are still missing" if still else None


def running_daemons() -> dict[int, str]:
    """PIDs of slurmctld/slurmd processes already running on this machine (read from /proc)."""
    found = {}
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            name = comm.read_text().strip()
        except OSError:
            continue
        if name in DAEMONS:
            found[int(comm.parent.name)] = name
    return found


def why_no_live_cluster() -> str | None:
    """Why a live test cluster cannot be started here (Slurm installed first if missing), or None."""
    if os.geteuid() != 0:
        return "starting slurmctld/slurmd and writing /etc/slurm/slurm.conf needs root"
    reason = install_slurm()
    if reason:
        return f"no Slurm: {reason}"
    if running_daemons():
        return f"Slurm daemons already run on this machine ({running_daemons()}); not touching them"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_key_values(line: str) -> dict[str, str]:
    """``Key=Value Key2=Value two`` (scontrol -o / jobcomp lines) as a dict; values may contain spaces."""
    fields: dict[str, str] = {}
    matches = list(re.finditer(r"(?:^|\s)([A-Za-z][A-Za-z0-9_:/]*)=", line))
    for k, m in enumerate(matches):
        end = matches[k + 1].start() if k + 1 < len(matches) else len(line)
        fields[m.group(1)] = line[m.end():end].strip()
    return fields


def parse_tres(tres: str) -> dict[str, str]:
    """``cpu=2,mem=1000M,node=1,billing=2,gres/gpu=1`` as a dict."""
    return dict(item.split("=", 1) for item in tres.split(",") if "=" in item)


def mem_mb(value: str) -> int:
    """Slurm memory strings (``1500M``, ``2G``, ``1500``) in MB."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)", value.strip())
    if not m:
        raise ValueError(f"not a Slurm memory value: {value!r}")
    factor = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}[m.group(2)]
    return int(round(float(m.group(1)) * factor))


def minutes(value: str) -> float:
    """Slurm time limits (``[days-]hours:minutes:seconds``, ``minutes``) in minutes."""
    value = value.strip()
    days = 0
    if "-" in value:
        d, value = value.split("-", 1)
        days = int(d)
    parts = [int(p) for p in value.split(":")]
    if len(parts) == 1:
        h, m, s = 0, parts[0], 0
    elif len(parts) == 2:
        h, m, s = 0, parts[0], parts[1]
    else:
        h, m, s = parts
    return days * 1440 + h * 60 + m + s / 60


class SlurmCluster:
    """slurmctld + slurmd on this host with the given partitions (all on the one node)."""

    def __init__(
        self,
        root: Path,
        partitions: dict[str, dict],
        cpus: int | None = None,
        real_memory_mb: int = 64000,
        gpus: int = 1,
        min_job_age_s: int = 3600,
    ):
        self.root = Path(root)
        self.partitions = partitions
        if sum(bool(p.get("default")) for p in partitions.values()) != 1:
            raise ValueError("exactly one partition must be the default")
        self.cpus = cpus or os.cpu_count() or 1
        self.real_memory_mb = real_memory_mb
        self.gpus = gpus
        self.min_job_age_s = min_job_age_s
        self.node = socket.gethostname().split(".")[0]
        self.jobcomp_file = self.root / "jobcomp.txt"
        self.procs: dict[str, subprocess.Popen] = {}
        self._backups: dict[Path, Path] = {}
        self._written: list[Path] = []

    # ------------------------------------------------------------------ configuration
    def slurm_conf(self) -> str:
        r = self.root
        lines = [
            MARKER,
            "ClusterName=confselecttest",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "AuthType=auth/none",
            "CredType=cred/none",
            "SlurmUser=root",
            "SlurmdUser=root",
            f"StateSaveLocation={r / 'state'}",
            f"SlurmdSpoolDir={r / 'spool'}",
            f"SlurmctldPidFile={r / 'slurmctld.pid'}",
            f"SlurmdPidFile={r / 'slurmd.pid'}",
            f"SlurmctldLogFile={r / 'slurmctld.log'}",
            f"SlurmdLogFile={r / 'slurmd.log'}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/filetxt",
            f"JobCompLoc={self.jobcomp_file}",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "SchedulerType=sched/backfill",
            "SchedulerParameters=sched_interval=2",
            "MpiDefault=none",
            "SwitchType=switch/none",
            "GresTypes=gpu",
            f"MinJobAge={self.min_job_age_s}",
            "ReturnToService=2",
            "KillWait=5",
            # The node may be declared larger than the machine (memory is not enforced without cgroups).
            "SlurmdParameters=config_overrides",
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.real_memory_mb} "
            f"Gres=gpu:{self.gpus} State=UNKNOWN",
        ]
        for name, opts in self.partitions.items():
            default = "YES" if opts.get("default") else "NO"
            lines.append(f"PartitionName={name} Nodes={self.node} Default={default} MaxTime=INFINITE State=UP")
        return "\n".join(lines) + "\n"

    def gres_conf(self) -> str:
        return f"{MARKER}\nNodeName={self.node} Name=gpu File=/dev/null Count={self.gpus}\n"

    def _install_conf(self) -> None:
        CONF_DIR.mkdir(parents=True, exist_ok=True)
        for name, text in (("slurm.conf", self.slurm_conf()), ("gres.conf", self.gres_conf())):
            path = CONF_DIR / name
            if path.exists() and MARKER not in path.read_text(errors="replace"):
                backup = path.with_name(f"{name}.before-confselect-test.{os.getpid()}")
                shutil.move(path, backup)
                self._backups[path] = backup
            path.write_text(text)
            self._written.append(path)

    def _restore_conf(self) -> None:
        for path in self._written:
            if path.exists() and MARKER in path.read_text(errors="replace"):
                path.unlink()
        for path, backup in self._backups.items():
            shutil.move(backup, path)
        self._written, self._backups = [], {}

    # ------------------------------------------------------------------ life cycle
    def start(self, timeout_s: float = 60) -> None:
        for sub in ("state", "spool"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._install_conf()
        try:
            self.procs["slurmctld"] = self._spawn(["slurmctld", "-D", "-i"], "slurmctld.out")
            self._wait(self._controller_up, timeout_s, "slurmctld did not answer scontrol ping")
            self.procs["slurmd"] = self._spawn(["slurmd", "-D", "-N", self.node], "slurmd.out")
            self._wait(self._node_ready, timeout_s, "the node did not become idle")
        except BaseException:
            self.stop()
            raise

    def _spawn(self, cmd, out_name) -> subprocess.Popen:
        exe = shutil.which(cmd[0]) or str(Path("/usr/sbin", cmd[0]))
        out = open(self.root / out_name, "w")
        return subprocess.Popen([exe, *cmd[1:]], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}: {self.daemon_log(name)[-2000:]}")

    def _controller_up(self) -> bool:
        self._check_alive()
        return "UP" in self._run(["scontrol", "ping"])

    def _node_ready(self) -> bool:
        self._check_alive()
        state = self._run(["sinfo", "-h", "-n", self.node, "-o", "%t"]).split()
        return bool(state) and all(s in ("idle", "mix", "alloc") for s in state)

    def stop(self) -> None:
        """Cancel every job, stop both daemons (by PID), put any earlier configuration back."""
        try:
            if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
                ids = self._run(["squeue", "-h", "-o", "%i", "-t", "PD,R,CG,S"]).split()
                if ids:
                    subprocess.run(["scancel", *ids], capture_output=True, timeout=30)
                    deadline = time.time() + 30
                    while time.time() < deadline and self._run(["squeue", "-h", "-o", "%i", "-t", "PD,R,CG"]).strip():
                        time.sleep(1)
        finally:
            for name in ("slurmd", "slurmctld"):
                proc = self.procs.get(name)
                if proc is None or proc.poll() is not None:
                    continue
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
            self._restore_conf()

    # ------------------------------------------------------------------ queries
    def _run(self, cmd, check=False) -> str:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if check and done.returncode != 0:
            raise RuntimeError(f"{shlex.join(cmd)}: {done.stderr.strip()}")
        return done.stdout

    def _ok(self, cmd) -> bool:
        return subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0

    @staticmethod
    def _wait(predicate, timeout_s, what) -> None:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if predicate():
                return
            time.sleep(0.5)
        raise TimeoutError(what)

    def daemon_log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def jobs(self) -> dict[str, dict[str, str]]:
        """``scontrol -o show job`` for every job slurmctld still remembers (finished ones for MinJobAge)."""
        out = self._run(["scontrol", "-o", "--details", "show", "job"], check=True)
        records = {}
        for line in out.splitlines():
            if line.startswith("JobId="):
                rec = parse_key_values(line)
                records[rec["JobId"]] = rec
        return records

    def batch_script(self, job_id: str) -> str:
        return self._run(["scontrol", "write", "batch_script", str(job_id), "-"], check=True)

    def jobcomp_records(self) -> dict[str, dict[str, str]]:
        """The job-completion file: one record per finished job (the last one per JobId)."""
        if not self.jobcomp_file.exists():
            return {}
        records = {}
        for line in self.jobcomp_file.read_text().splitlines():
            if line.startswith("JobId="):
                rec = parse_key_values(line)
                records[rec["JobId"]] = rec
        return records

    def sacct_jobcomp(self, fields=("JobID", "Partition", "State", "ExitCode", "AllocCPUS", "Timelimit")) -> dict:
        """``sacct -c`` (reads the job-completion file) as {job id: {field: value}}."""
        out = self._run(
            ["sacct", "-c", "-P", "-n", "-X", f"--format={','.join(fields)}", "-S", "2000-01-01"], check=True
        )
        rows = {}
        for line in out.splitlines():
            values = line.split("|")
            if len(values) == len(fields):
                rows[values[0]] = dict(zip(fields, values))
        return rows
