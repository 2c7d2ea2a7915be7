"""pyproject.toml declares exactly what shipped code imports: every third-party module the package
imports is a declared dependency (or an optional extra's, for imports guarded by ImportError), and
every declared core dependency is imported somewhere."""

import ast
import re
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
IMPORT_NAMES = {"pyyaml": "yaml"}  # distribution -> module where they differ
PART_OF = {"_pytest": "pytest"}  # a distribution's private top-level module -> the distribution


def _name(requirement: str) -> str:
    dist = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower()
    return IMPORT_NAMES.get(dist, dist.replace("-", "_"))


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _imports() -> dict[str, set[str]]:
    """Third-party top-level modules imported by shipped code -> the files importing them."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / "audit").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                top = PART_OF.get(top, top)
                if top != "audit" and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_imported_module_is_declared():
    project = _pyproject()["project"]
    core = {_name(r) for r in project["dependencies"]}
    optional = {_name(r) for extra in project["optional-dependencies"].values() for r in extra}
    undeclared = {m: sorted(files) for m, files in _imports().items() if m not in core | optional}
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_every_core_dependency_is_imported_and_test_tools_are_dev_only():
    project = _pyproject()["project"]
    core = {_name(r) for r in project["dependencies"]}
    imported = set(_imports())
    assert core - imported == set(), "declared but never imported by shipped code"
    assert "hypothesis" not in core and "hypothesis" not in imported
    assert "hypothesis" in {_name(r) for r in project["optional-dependencies"]["dev"]}


@pytest.mark.parametrize("module", ["audit", "audit.plugin"])
def test_importing_the_package_and_the_plugin_loads_no_torch(module):
    import subprocess

    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr
