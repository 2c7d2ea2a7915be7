"""The recipes of docs/architecture.md state the true number of files each extension touches: the example
plugin is exactly the files the recipe lists (and registers a dataset, a backend and a gate through
entry points alone: nothing in audit/ names them), and CrowS-Pairs, the third built-in dataset, is named
outside its own package, templates, suite test, tests and docs by one registration line."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")


def _tracked(under: str) -> set[str]:
    out = subprocess.run(["git", "ls-files", under], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return set(out.split())


def _audit_files_naming(pattern: str) -> dict[str, list[str]]:
    hits: dict[str, list[str]] = {}
    for path in sorted((ROOT / "audit").rglob("*")):
        if path.suffix not in (".py", ".toml") or "__pycache__" in path.parts:
            continue
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if re.search(pattern, line, re.I)]
        if lines:
            hits[str(path.relative_to(ROOT))] = lines
    return hits


def test_the_example_plugin_is_exactly_the_files_the_recipe_lists():
    block = re.search(r"<!-- example plugin files \(tests/test_recipes.py\) -->\n```\n(.*?)```", DOC, re.S)
    assert block, "docs/architecture.md lost the example plugin's file list"
    listed = set(block.group(1).split())
    assert listed == _tracked("tests/plugin_example")
    assert f"is exactly these {len(listed)} files" in DOC and f"The example\nplugin is {len(listed)} files" in DOC
    pyproject = (ROOT / "tests" / "plugin_example" / "pyproject.toml").read_text()
    for group in ("datasets", "backends", "gates"):  # each seam through one entry point
        table = re.search(rf'\[project.entry-points."bias_audit.{group}"\]\n((?:[^\[\n].*\n)+)', pyproject).group(1)
        assert len([line for line in table.splitlines() if "=" in line]) == 1, group
    for name in ("words-rule", "words_frame_gap", "bias_audit_example"):  # nothing here knows the plugin
        assert not _audit_files_naming(re.escape(name)), name


def test_crows_pairs_is_named_outside_its_package_by_one_registration_line():
    outside = {f: lines for f, lines in _audit_files_naming(r"crows").items() if not f.startswith("audit/datasets/crows_pairs/")}
    assert list(outside) == ["audit/datasets/__init__.py"], outside
    assert len(outside["audit/datasets/__init__.py"]) == 1 and "register_dataset(" in outside["audit/datasets/__init__.py"][0]
    package = {f for f in _tracked("audit/datasets/crows_pairs") if not f.endswith("README.md")}
    formats = {f for f in _tracked("templates/prompts") if "crows" in f}
    assert f"(CrowS-Pairs: {len(package)} files, its preset inside)" in DOC
    assert f"(`templates/prompts/NAME/`, CrowS-Pairs: {len(formats)})" in DOC
    assert any(f.endswith("presets/crows-pairs.toml") for f in package)
    suite = (ROOT / "fairness_tests" / "test_bias_transfer.py").read_text()
    assert suite.count('audit_gate("crows_pairs_bias")') == 1
