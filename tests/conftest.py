"""Shared fixtures: the repository paths and one real run of the tiny workflow for the workflow tests."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "configs" / "tiny.yaml"
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def snakemake(workdir, *args, configfiles=(TINY,), check=True, timeout=1200):
    """Run the project's workflow in ``workdir`` and return the CompletedProcess (stdout+stderr merged)."""
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2"]
    if configfiles:
        cmd += ["--configfile", *map(str, configfiles)]
    cmd += list(args)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-6000:]}")
    return proc


def planned_jobs(output: str) -> dict:
    """Rule -> job count from a dry run's 'Job stats' table (empty if nothing is to be done)."""
    counts, in_table = {}, False
    for line in output.splitlines():
        if line.startswith("Job stats:"):
            in_table, counts = True, {}
            continue
        if in_table:
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
                counts[parts[0]] = int(parts[1])
            elif parts and parts[0] == "total":
                in_table = False
    return counts


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The tiny workflow, really run once (LAMMPS, SchNetPack, ASE MD): its working directory."""
    workdir = tmp_path_factory.mktemp("tiny_run")
    snakemake(workdir)
    return workdir
