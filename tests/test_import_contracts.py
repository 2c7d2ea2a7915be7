"""The import contracts of pyproject.toml ([tool.importlinter]: the layers of docs/architecture.md, no
upward import, no cycle between the stages) hold, and `lint-imports` catches a new upward import.
Skipped where import-linter (the dev extra) is not installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> list[str]:
    exe = shutil.which("lint-imports")
    if exe:
        return [exe]
    try:
        import importlinter  # noqa: F401
    except ImportError:
        pytest.skip("import-linter is not installed (pip install -e .[dev])")
    return [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"]


def _run(root: Path) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([*_lint_imports(), "--config", str(root / "pyproject.toml"), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_import_contracts_hold():
    done = _run(ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "2 kept, 0 broken" in done.stdout


def test_a_new_upward_import_breaks_the_contract(tmp_path):
    shutil.copytree(ROOT / "audit", tmp_path / "audit", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "audit" / "stats" / "upward.py").write_text("from audit.report import format  # a statistic reaching up\n")
    done = _run(tmp_path)
    assert done.returncode != 0
    assert "audit.stats is not allowed to import audit.report" in done.stdout
