"""A killed run resumes where it stopped: no finished label is computed again (real xTB labels, real kill)."""

import os
import signal
import subprocess
import time

import pandas as pd
import pytest
import yaml

from conftest import REPO, SNAKEMAKE, TINY, snakemake

pytestmark = pytest.mark.workflow


def store_entries(workdir):
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (workdir / "results/label_store").rglob("*.extxyz")}


def test_killed_xtb_run_resumes_without_relabelling(tmp_path):
    override = tmp_path / "xtb.yaml"
    override.write_text(
        yaml.safe_dump(
            {"sweep": {"methods": ["random"], "n_train": [8], "seeds": [0], "full": {"enabled": False}},
             "systems": {"NaCl": {"labeller": "xtb"}}}
        )
    )
    workdir = tmp_path / "run"
    workdir.mkdir()
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2",
           "--configfile", str(TINY), str(override)]
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 600
    while len(store_entries(workdir)) < 3:  # wait until some labels are finished ...
        assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        assert time.time() < deadline, "no labels appeared within 10 minutes"
        time.sleep(0.5)
    os.killpg(first.pid, signal.SIGKILL)  # ... then kill Snakemake and its jobs, as a node failure would
    first.wait()
    before = store_entries(workdir)
    n_test = int(yaml.safe_load(TINY.read_text())["test"]["generators"]["md"]["ramp_fs"] // 500.0)
    assert 3 <= len(before) < 8 + n_test, "the kill came too late to test resuming"

    snakemake(workdir, "--unlock", configfiles=(TINY, override))
    snakemake(workdir, configfiles=(TINY, override))

    after = store_entries(workdir)
    assert len(after) == 8 + n_test  # every frame labelled, each once
    for path, (mtime, content) in before.items():
        assert after[path] == (mtime, content), f"{path} was recomputed"
    summary = pd.read_csv(workdir / "results/report/summary.csv")
    assert len(summary) == 1 and summary["labeller"].iloc[0].startswith("xtb-")
    assert summary["n_trained"].iloc[0] == 8
