"""The CP2K labeller's settings, launcher and failure paths, with a stand-in cp2k (tests/fake_cp2k.py).

Real CP2K runs are in tests/test_labellers.py (marked ``cp2k``); here the program is played back from the
fixtures of tests/data/cp2k, so every way a run can fail is exercised in a second: each must end as one
:class:`LabelFailure` of the right kind (transient or not), and a label job must end with a failure record
for its frame, never with an error.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import yaml
from ase.io import read

import fake_cp2k
from conftest import TINY, snakemake
from confselect.config import SCHEMA, ConfigError, section_defaults, validate_config
from confselect.labelling import LabelFailure, labeller_cores
from confselect.labelling.cp2k import SOLVER_SETTINGS, CP2KLabeller
from confselect.labelling.cp2k_input import render_input
from confselect.labelling.cp2k_settings import labeller_from_config, settings_from_schema
from confselect.labelling.frame_job import label_batch
from confselect.labelling.store import LabelStore

REPO = Path(__file__).resolve().parents[1]
FRAME = REPO / "tests" / "data" / "cp2k" / "2023.1" / "frame.extxyz"
ENERGY_EV = -412.16760436784705
NA_FORCE_EV_A = [0.07250100, -0.03853673, 0.05995504]
#: The settings that say how or where a label is computed, not what it is (schema: x-machine).
MACHINE = {"executable", "launcher", "ranks", "threads", "timeout_s", "data_dir", "basis_set_file",
           "potential_file", "vdw_kernel_file", "max_scf", "mixing_alpha", "retry"}


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """Puts fake-cp2k and fake-launcher on PATH; returns a function that sets the fake's modes."""
    bin_dir = fake_cp2k.install(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LAUNCHER_LOG", str(tmp_path / "launcher.json"))

    def modes(*names):
        monkeypatch.setenv("FAKE_CP2K_MODES", ",".join(names))

    return modes


def frame():
    atoms = read(FRAME)
    atoms.calc = None
    return atoms


def labeller(**settings) -> CP2KLabeller:
    return labeller_from_config({"executable": "fake-cp2k", **settings})


def failure(lab: CP2KLabeller, workdir: Path) -> LabelFailure:
    with pytest.raises(LabelFailure) as caught:
        lab.label(frame(), workdir)
    return caught.value


# ---------------------------------------------------------------------------------------- settings
def test_schema_properties_are_the_labellers_fields():
    node = yaml.safe_load(SCHEMA.read_text())["properties"]["labelling"]["properties"]["cp2k"]
    assert set(node["properties"]) == {f.name for f in dataclasses.fields(CP2KLabeller)}
    assert node["additionalProperties"] is False
    marked = {key for key, spec in node["properties"].items() if spec.get("x-machine")}
    assert marked == MACHINE
    assert set(SOLVER_SETTINGS) <= marked
    for key, spec in node["properties"].items():
        assert "default" in spec and spec.get("description"), key


def test_the_schema_is_the_only_home_of_the_defaults():
    defaults = section_defaults(SCHEMA, "labelling", "cp2k")
    assert dataclasses.asdict(labeller_from_config({})) == defaults
    assert defaults["cutoff_Ry"] == 600.0 and defaults["basis"]["Na"] == "DZVP-MOLOPT-SR-GTH-q9"
    assert not any(f.default is not dataclasses.MISSING for f in dataclasses.fields(CP2KLabeller))
    # an element given by the user is merged with the other defaults, as the workflow's validation does
    lab = labeller_from_config({"basis": {"Na": "TZVP-MOLOPT-PBE-GTH-q1"}})
    assert lab.basis == {"Na": "TZVP-MOLOPT-PBE-GTH-q1", "K": "DZVP-MOLOPT-SR-GTH-q9", "Cl": "DZVP-MOLOPT-SR-GTH-q7"}


@pytest.mark.parametrize("settings, message", [
    ({"thread": 2}, r"config key labelling.cp2k: .*'thread' was unexpected"),
    ({"threads": 0}, r"config key labelling.cp2k.threads: 0 is less than the minimum of 1"),
    ({"ranks": 2}, r"config key labelling.cp2k: 'launcher' is a required property"),
    ({"launcher": "srun -n {rank}"}, r"config key labelling.cp2k.launcher: 'srun -n \{rank\}' does not match"),
    ({"retry": {"eps_scf": 1e-5}}, r"config key labelling.cp2k.retry: .*'eps_scf' was unexpected"),
])
def test_bad_settings_stop_at_parse_time_naming_the_key(settings, message):
    with pytest.raises(ValueError, match=message):
        labeller_from_config(settings)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["labelling"]["cp2k"] = settings
    with pytest.raises(ConfigError, match=message):
        validate_config(config, SCHEMA)


def test_a_label_job_books_ranks_times_threads_cores(tmp_path):
    assert labeller_cores("cp2k", settings_from_schema({"launcher": "mpirun -np {ranks}", "ranks": 2, "threads": 3})) == 6
    assert labeller_cores("xtb", {}) == 1
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump({"systems": {"NaCl": {"labeller": "cp2k"}}, "labelling": {
        "check_setup": False, "cp2k": {"launcher": "mpirun -np {ranks}", "ranks": 2, "threads": 3}}}))
    plan = snakemake(tmp_path / "run", "-n", "--cores", "8", configfiles=(TINY, site)).stdout
    label_jobs = plan.split("rule label:")[1:]
    assert label_jobs and all("threads: 6" in job.split("\n\n")[0] for job in label_jobs)


def test_charge_and_multiplicity_reach_the_input():
    text = render_input(labeller().input_tree(frame(), "label", "label.xyz"))
    assert "CHARGE 0" in text and "MULTIPLICITY 1" in text and "UKS" not in text
    text = render_input(labeller(charge_e=1, multiplicity=2).input_tree(frame(), "label", "label.xyz"))
    assert "CHARGE 1" in text and "MULTIPLICITY 2" in text and "UKS .TRUE." in text


# ---------------------------------------------------------------------------------------- running
def test_launcher_gets_ranks_threads_and_the_program(fake, tmp_path):
    fake("ok:2023.1")
    lab = labeller(launcher="fake-launcher --ntasks={ranks} --cpus-per-task={threads}", ranks=2, threads=3)
    labelled = lab.label(frame(), tmp_path / "work")
    seen = json.loads((tmp_path / "launcher.json").read_text())
    assert seen["options"] == ["--ntasks=2", "--cpus-per-task=3"]
    assert seen["program"] == ["fake-cp2k", "-i", "label.inp", "-o", "label.out"]
    assert seen["OMP_NUM_THREADS"] == "3"
    assert lab.cores == 6
    assert labelled.get_potential_energy() == pytest.approx(ENERGY_EV, abs=1e-6)
    assert np.allclose(labelled.get_forces()[0], NA_FORCE_EV_A, atol=5e-7)
    assert (labelled.info["cp2k_ranks"], labelled.info["cp2k_threads"]) == (2, 3)


def test_without_launcher_the_program_runs_alone(fake, tmp_path):
    fake("ok:2023.1")
    labelled = labeller(threads=2).label(frame(), tmp_path / "work")
    assert not (tmp_path / "launcher.json").exists()
    assert labelled.info["cp2k_version"] == "CP2K version 2023.1"


@pytest.mark.parametrize("release", ["2023.1", "2024.1", "2025.1", "2025.2", "2026.2"])
def test_labels_from_every_release(fake, tmp_path, release):
    fake(f"ok:{release}")
    labelled = labeller().label(frame(), tmp_path / "work")
    assert labelled.get_potential_energy() == pytest.approx(ENERGY_EV, abs=1e-6)
    assert np.allclose(labelled.get_forces()[0], NA_FORCE_EV_A, atol=5e-7)


@pytest.mark.parametrize("release", ["2023.1", "2024.1", "2026.2"])
def test_non_converged_scf_is_retried_then_a_deterministic_failure(fake, tmp_path, release):
    fake(f"noconv:{release}")
    err = failure(labeller(max_scf=2, retry={"max_scf": 5, "mixing_alpha": 0.2}), tmp_path / "work")
    assert not err.transient and err.details["kind"] == "scf"
    assert [(a["max_scf"], a["mixing_alpha"]) for a in err.details["attempts"]] == [(2, 0.4), (5, 0.2)]
    assert json.loads(err.details["solver_settings"]) == {"max_scf": 2, "mixing_alpha": 0.4,
                                                          "retry": {"max_scf": 5, "mixing_alpha": 0.2}}
    assert "MAX_SCF 5" in (tmp_path / "work" / "retry.inp").read_text()
    fake(f"noconv:{release}", f"ok:{release}")
    labelled = labeller().label(frame(), tmp_path / "again")
    assert labelled.info["scf_retry"] is True
    assert labelled.get_potential_energy() == pytest.approx(ENERGY_EV, abs=1e-6)


def test_a_failure_on_the_retry_counts_both_attempts_under_the_settings_given(fake, tmp_path):
    fake("noconv:2024.1", "abort")
    lab = labeller()
    err = failure(lab, tmp_path / "work")
    assert err.details["kind"] == "abort" and not err.transient
    assert err.details["solver_settings"] == lab.solver_settings()
    assert (tmp_path / "work" / "label.out").exists() and (tmp_path / "work" / "retry.out").exists()


@pytest.mark.parametrize("mode, kind, transient, reason", [
    ("abort", "abort", False, r"CP2K aborted: Use the LSD option for an odd number of electrons \(qs_environment.F:1375\)"),
    ("exit3", "exit", True, "exited with code 3 without an SCF verdict"),
    ("kill", "signal", True, "killed by signal 9"),
    ("corrupt_forces", "parse", True, "label-forces-1_0.xyz: the force rows add up to"),
    ("truncated_forces", "parse", True, "unreadable line after force row 1"),
    ("no_forces", "no_forces", True, "wrote no forces"),
    ("energy_ev", "parse", True, r"total energy printed in \[eV\]"),
])
def test_each_failure_has_its_kind_and_the_tail_of_the_output(fake, tmp_path, mode, kind, transient, reason):
    fake(mode)
    err = failure(labeller(), tmp_path / "work")
    assert (err.details["kind"], err.transient, err.details["transient"]) == (kind, transient, transient)
    assert re.search(reason, str(err)), str(err)
    last_line = [line for line in (tmp_path / "work" / "label.out").read_text().splitlines() if line.strip()][-1]
    assert err.details["out_tail"].split(" || ")[-1] == last_line.rstrip().replace("\\", "/")
    assert len(err.details["out_tail"].split(" || ")) == 20
    assert err.details["workdir"] == str(tmp_path / "work")
    assert (tmp_path / "work" / "label.inp").exists() and (tmp_path / "work" / "label.out").exists()


def test_a_timeout_stops_cp2k_and_everything_it_started(fake, tmp_path):
    fake("sleep")
    start = time.perf_counter()
    err = failure(labeller(timeout_s=1.0, launcher="fake-launcher --np={ranks}"), tmp_path / "work")
    assert err.details["kind"] == "timeout" and err.transient
    assert time.perf_counter() - start < 15
    assert gone(int((tmp_path / "work" / ".fake_child").read_text()))


def gone(pid: int) -> bool:
    """The process has ended (or is a zombie waiting to be reaped) within 5 s."""
    deadline = time.time() + 5
    while time.time() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.1)
    return False


def test_a_stopped_job_stops_cp2k_with_it(fake, tmp_path):
    """SIGTERM to the process running the labeller (Slurm or Snakemake stopping a job) stops CP2K's group."""
    fake("sleep")
    work = tmp_path / "work"
    script = (f"import sys; sys.path.insert(0, {str(REPO / 'src')!r})\n"
              "from ase.io import read\nfrom confselect.labelling.cp2k_settings import labeller_from_config\n"
              f"labeller_from_config({{'executable': 'fake-cp2k'}}).label(read({str(FRAME)!r}), {str(work)!r})\n")
    job = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.time() + 60
    while not (work / ".fake_child").exists() and time.time() < deadline:
        time.sleep(0.1)
    job.send_signal(signal.SIGTERM)
    assert job.wait(timeout=30) == -signal.SIGTERM
    assert gone(int((work / ".fake_child").read_text()))


@pytest.mark.parametrize("settings, missing", [
    ({"executable": "no-such-cp2k"}, "no-such-cp2k"),
    ({"launcher": "no-such-mpirun -np {ranks}"}, "no-such-mpirun"),
    ({"launcher": "fake-launcher", "executable": "no-such-cp2k"}, "no-such-cp2k"),
])
def test_missing_launcher_or_executable_at_run_time(fake, tmp_path, settings, missing):
    fake("ok:2023.1")
    err = failure(labeller(**settings), tmp_path / "work")
    assert err.details["kind"] == "launch" and err.transient
    assert missing in str(err)


# ---------------------------------------------------------------------------------------- the label job
def job(tmp_path, settings, frame_index=0):
    """A label job of one frame: what happened to it, what the job wrote, the store."""
    store = LabelStore(tmp_path / "store", "cp2k-test")
    out = tmp_path / "labels" / "selection" / "batch0.extxyz"
    complete = settings_from_schema({"executable": "fake-cp2k", **settings})  # as the workflow passes them
    counts = label_batch({frame_index: frame()}, "cp2k", complete, store, out, "pool", job_threads=1,
                         log=lambda text: None)
    (status,) = counts
    return status, read(out), store


def fake_runs(tmp_path, frame_index=0) -> list[str]:
    runs = tmp_path / "labels" / "selection" / f".pool_{frame_index}.work" / ".fake_runs"
    return runs.read_text().split() if runs.exists() else []


def test_corrupted_forces_give_one_transient_failure_record_and_the_job_ends(fake, tmp_path):
    fake("corrupt_forces")
    status, record, store = job(tmp_path, {})
    assert status == "failed, transient"
    assert record.info["label_status"] == "failed" and record.info["label_kind"] == "parse"
    assert record.info["label_transient"] is True and "add up" in record.info["label_error"]
    assert "ENERGY| Total FORCE_EVAL" in record.info["label_out_tail"]
    assert store.get(frame()) is None  # not stored: the next run tries again
    work = tmp_path / "labels" / "selection" / ".pool_0.work"
    assert {"label.inp", "label.out", "label-forces-1_0.xyz"} <= {p.name for p in work.iterdir()}
    fake("ok:2023.1")
    status, labelled, store = job(tmp_path, {})
    assert status == "labelled" and store.get(frame()) is not None
    assert labelled.get_potential_energy() == pytest.approx(ENERGY_EV, abs=1e-6)
    assert not work.exists()  # kept only while the frame has no label


def test_a_deterministic_failure_is_stored_and_reused_until_the_solver_settings_change(fake, tmp_path):
    fake("noconv:2024.1")
    status, record, store = job(tmp_path, {"max_scf": 2})
    assert status == "failed" and record.info["label_transient"] is False
    assert store.get(frame()) is not None and fake_runs(tmp_path) == ["noconv:2024.1"] * 2
    assert json.loads(record.info["label_solver_settings"])["max_scf"] == 2
    status, _, _ = job(tmp_path, {"max_scf": 2})
    assert status == "reused" and len(fake_runs(tmp_path)) == 2  # CP2K did not run again
    fake("ok:2024.1")
    status, labelled, store = job(tmp_path, {"max_scf": 50})
    assert status == "labelled"  # computed again, and the label replaced the stored failure
    assert read(store.get(frame())).get_potential_energy() == pytest.approx(ENERGY_EV, abs=1e-6)


def test_a_stored_label_is_always_reused(fake, tmp_path):
    fake("ok:2025.1")
    assert job(tmp_path, {})[0] == "labelled"
    fake("abort")
    for settings in ({}, {"max_scf": 7, "retry": None}, {"threads": 4, "timeout_s": 60.0}):
        status, labelled, _ = job(tmp_path, settings)
        assert status == "reused" and labelled.get_potential_energy() == pytest.approx(ENERGY_EV, abs=1e-6)
