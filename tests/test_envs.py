"""Per-rule software environments (envs/*.yaml) against what the rules' scripts import.

Conda cannot run on this machine (no conda, mamba or micromamba can be installed and no conda channel is
reachable), so ``--sdm conda`` is never exercised here.  Instead this test reads each rule in rules/*.smk,
takes its ``conda:`` environment and its ``script:``, collects every import of the script and of the
confselect modules it pulls in (transitively, through the AST, function-level imports included, and the
parent packages Python imports on the way), and checks that the environment file lists a distribution
for every third-party module among them.  An environment that lacks a module its rules import fails.

It also runs ``snakemake --lint`` on the tiny configuration, which must report nothing.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGE_ROOT = REPO / "src"
PACKAGE = "confselect"
TINY = REPO / "tests" / "configs" / "tiny.yaml"

# Import name -> names the distribution may be listed under (conda-forge or PyPI, normalised).
DISTRIBUTIONS = {
    "yaml": {"pyyaml"},
    "torch": {"torch", "pytorch", "pytorch-gpu", "pytorch-cpu"},
    "pytorch_lightning": {"pytorch-lightning", "lightning"},
    "sklearn": {"scikit-learn"},
    "lammps": {"lammps"},
    "tblite": {"tblite", "tblite-python"},
    "PIL": {"pillow"},
    "matplotlib": {"matplotlib", "matplotlib-base"},
}
# Modules provided by the workflow itself, not by the environment.
PROVIDED = {PACKAGE, "snakemake"}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def distribution_names(env: dict) -> set[str]:
    """Names of everything an environment file installs (conda specs and the pip section)."""
    names = set()
    for dep in env.get("dependencies", []):
        specs = dep.get("pip", []) if isinstance(dep, dict) else [dep]
        for spec in specs:
            spec = spec.strip()
            if not spec or spec.startswith("-"):  # pip options such as --extra-index-url
                continue
            name = re.split(r"[\s=<>!~\[;@]", spec.split("::")[-1], maxsplit=1)[0]
            names.add(normalise(name))
    return names


def acceptable(module: str) -> set[str]:
    return {normalise(n) for n in DISTRIBUTIONS.get(module, {module})}


# ------------------------------------------------------------------------------------------ the rules
_RULE = re.compile(r"^(?:rule|checkpoint)\s+(\w+)\s*:", re.M)
_DIRECTIVE = re.compile(r"^\s+(conda|script)\s*:\s*(?:\n\s*)?(?P<q>['\"])(?P<value>.+?)(?P=q)", re.M)


def rules() -> dict[str, dict[str, Path]]:
    """rule name -> {"conda": env file, "script": script file, "file": the .smk} for every rule file."""
    found = {}
    for smk in sorted((REPO / "rules").glob("*.smk")) + [REPO / "Snakefile"]:
        text = smk.read_text()
        starts = [(m.start(), m.group(1)) for m in _RULE.finditer(text)] + [(len(text), None)]
        for (start, name), (end, _) in zip(starts, starts[1:]):
            body = text[start:end]
            entry = {"file": smk}
            for m in _DIRECTIVE.finditer(body):
                entry[m.group(1)] = (smk.parent / m.group("value")).resolve()
            found[name] = entry
    return found


# ------------------------------------------------------------------------------------------ imports
def _module_file(module: str, root: Path = PACKAGE_ROOT) -> Path | None:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_level(tree: ast.AST):
    """The nodes Python runs when it imports a module: everything outside function bodies."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(node))


def _imports(path: Path, module: str | None, root: Path = PACKAGE_ROOT, package: str = PACKAGE,
             module_level: bool = False, tree: ast.AST | None = None):
    """(top-level names of other packages, modules of ``package``) imported anywhere in a file (only where
    importing it runs, with ``module_level``; ``tree``: the file's already parsed statements)."""
    tree = tree if tree is not None else ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    external, internal = set(), set()
    for node in (_module_level(tree) if module_level else ast.walk(tree)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top == package:
                    internal.add(alias.name)
                else:
                    external.add(top)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import inside the package
                if module is None:
                    continue
                parts = module.split(".") if is_package else module.split(".")[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] == package:
                internal.add(base)
                for alias in node.names:  # `from pkg import submodule`
                    if _module_file(f"{base}.{alias.name}", root):
                        internal.add(f"{base}.{alias.name}")
            elif base:
                external.add(base.split(".")[0])
    return external, internal


def script_imports(script: Path, root: Path = PACKAGE_ROOT, package: str = PACKAGE, module_level: bool = False,
                   tree: ast.AST | None = None) -> tuple[set[str], list[str]]:
    """Top-level module names a script needs (its own imports and those of the ``package`` modules it
    uses, transitively), and ``package`` modules it names that do not exist.  With ``module_level``, a
    ``package`` module contributes only what importing it imports (not its functions' imports)."""
    external, todo = _imports(script, None, root, package, tree=tree)
    seen, missing = set(), []
    todo = set(todo)
    while todo:
        module = todo.pop()
        parts = module.split(".")
        for k in range(1, len(parts) + 1):  # importing a.b.c imports a and a.b first
            todo.add(".".join(parts[:k]))
        todo -= seen
        if module in seen:
            continue
        seen.add(module)
        path = _module_file(module, root)
        if path is None:
            missing.append(module)
            continue
        ext, internal = _imports(path, module, root, package, module_level)
        external |= ext
        todo |= internal - seen
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    return {m for m in external if m not in stdlib and m not in PROVIDED | {package}}, sorted(missing)


# ------------------------------------------------------------------------------------------ tests
RULES = rules()
SCRIPTED = {name: r for name, r in RULES.items() if "script" in r}


def test_rules_were_found():
    assert {"generate_frames", "descriptors", "select", "label", "train", "summary"} <= set(SCRIPTED), sorted(RULES)


@pytest.mark.parametrize("rule", sorted(SCRIPTED))
def test_env_provides_every_module_the_rule_imports(rule):
    entry = SCRIPTED[rule]
    assert "conda" in entry, f"rule {rule} in {entry['file'].name} has no conda: environment"
    env_file = entry["conda"]
    assert env_file.is_file(), f"rule {rule}: {env_file} does not exist"
    env = yaml.safe_load(env_file.read_text())
    assert "conda-forge" in env.get("channels", []), env_file
    provided = distribution_names(env)
    needed, missing_modules = script_imports(entry["script"])
    assert not missing_modules, f"rule {rule}: {entry['script'].name} imports modules that do not exist: {missing_modules}"
    lacking = sorted(m for m in needed if not acceptable(m) & provided)
    assert not lacking, f"{env_file.name} (rule {rule}) lacks {lacking}; it lists {sorted(provided)}"


def test_envs_pin_python_and_every_package():
    """Every environment fixes the interpreter and pins each pip package to one version."""
    for env_file in sorted((REPO / "envs").glob("*.yaml")):
        env = yaml.safe_load(env_file.read_text())
        deps = env["dependencies"]
        assert any(isinstance(d, str) and re.fullmatch(r"python\s*=\s*3\.\d+", d) for d in deps), env_file
        for dep in deps:
            if isinstance(dep, dict):
                for spec in dep["pip"]:
                    if not spec.startswith("-"):
                        assert "==" in spec, f"{env_file.name}: {spec} is not pinned"


# An import statement of a Snakefile (Snakemake's grammar is not Python's, its imports are), at any indentation;
# a parenthesised `from x import (...)` may span lines.
_SMK_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+[\w.]+[ \t]+import[ \t]+(?:\([^)]*\)|[^\n]+)|import[ \t]+[^\n]+)", re.M)


def workflow_parse_imports() -> tuple[set[str], list[str]]:
    """What parsing the workflow imports, statically: every import statement of the Snakefile and rules/*.smk
    (those inside their functions included) and what importing the confselect modules they name imports."""
    statements = []
    for smk in [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]:
        statements += [textwrap.dedent(m.group(0)) for m in _SMK_IMPORT.finditer(smk.read_text())]
    tree = ast.parse("\n".join(statements))
    return script_imports(REPO / "Snakefile", module_level=True, tree=tree)


def test_snakemake_env_provides_what_the_workflow_imports_at_parse_time():
    """envs/snakemake.yaml (the Snakemake process and every job's re-parse) lists every third-party module the
    Snakefile and rules import when parsed.  Statically: what the confselect modules they name import at
    module level; the imports inside functions that the parse calls (jsonschema, yaml of the schema check)
    are checked against a real parse in tests/test_planning.py."""
    env = yaml.safe_load((REPO / "envs" / "snakemake.yaml").read_text())
    provided = distribution_names(env)
    needed, missing = workflow_parse_imports()
    assert not missing, f"the workflow imports confselect modules that do not exist: {missing}"
    assert "numpy" in needed, needed  # the scan follows the Snakefile into confselect.selection
    lacking = sorted(m for m in needed if not acceptable(m) & provided)
    assert not lacking, f"envs/snakemake.yaml lacks {lacking}; it lists {sorted(provided)}"
    for plugin in ("snakemake", "snakemake-executor-plugin-slurm"):
        assert plugin in provided, f"envs/snakemake.yaml: {plugin} is what runs the workflow on Slurm"


def test_parse_time_scan_skips_function_bodies(tmp_path):
    """Module-level scanning counts what importing a module runs, not the imports inside its functions."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "light.py").write_text("import yaml\n\ndef heavy():\n    import torch\n\nclass A:\n    import json\n")
    tree = ast.parse("from pkg.light import heavy\n")
    assert script_imports(tmp_path / "x.smk", tmp_path, "pkg", module_level=True, tree=tree)[0] == {"yaml"}
    assert script_imports(tmp_path / "x.smk", tmp_path, "pkg", tree=tree)[0] == {"yaml", "torch"}


def test_import_scan_sees_function_level_and_relative_imports(tmp_path):
    """The scanner itself, on a made-up package: imports inside functions, relative imports, parent
    packages and ``from pkg import submodule`` all count; stdlib modules do not."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("import os\n\ndef make():\n    from .sub.deep import run\n    return run\n")
    (pkg / "sub" / "__init__.py").write_text("import numpy\n")
    (pkg / "sub" / "deep.py").write_text("def run():\n    import lammps\n    from ..other import x\n")
    (pkg / "other.py").write_text("from scipy import constants\nx = 1\n")
    (pkg / "leaf.py").write_text("import yaml\n")
    script = tmp_path / "script.py"
    script.write_text("import json\nfrom pkg import leaf\n\ndef main():\n    from pkg.sub.deep import run\n    import pandas\n")
    needed, missing = script_imports(script, tmp_path, "pkg")
    assert needed == {"numpy", "lammps", "scipy", "yaml", "pandas"} and not missing
    script.write_text("from pkg.nowhere import thing\n")
    assert script_imports(script, tmp_path, "pkg")[1] == ["pkg.nowhere"]


def test_lint_reports_nothing():
    """``snakemake --lint`` (run from the repository with the tiny configuration) finds no issue."""
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint", "--configfile", str(TINY)],
        cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Lints for" not in output, output
