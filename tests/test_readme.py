"""The README is checked: its gate table is the registry's, every option and preset it names exists, and
every shell block runs (the doc test): as written, or as the smaller variant declared just before it in an
HTML comment (``<!-- doc-test variant: WHY`` then the commands, then ``-->``), with the README's placeholders
standing for the tiny test model and the official data beside the checkout (../shared)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from audit.cli.commands import _parser
from audit.cli.listing import gate_table_markdown
from audit.config import preset_names

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _cli_options() -> set[str]:
    import argparse

    found: set[str] = set()

    def walk(p: argparse.ArgumentParser) -> None:
        for action in p._actions:
            found.update(action.option_strings)
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    walk(sub)

    walk(_parser())
    return found


def test_gate_table_is_generated_from_the_registry():
    assert gate_table_markdown() in README


def test_every_option_named_exists():
    options = _cli_options()
    named = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]+)", README))
    pytest_only = {o for o in named if o.startswith("--audit-")}  # the plugin's: --audit-NAME of a CLI --NAME
    known_other = {"--index-url", "--nproc-per-node", "--tb", "--co", "--deselect"}  # pip, torchrun, pytest
    known_other.add("--frobnicate")  # the README's example of an unknown option
    missing = sorted(o for o in named - options - known_other if o not in pytest_only)
    assert not missing, missing
    assert all(o.replace("--audit-", "--") in options for o in pytest_only), sorted(pytest_only)


def test_every_preset_named_exists():
    named = set(re.findall(r"--preset ([\w-]+)", README)) | set(re.findall(r'preset = "([\w-]+)"', README))
    assert named and named <= set(preset_names()), named - set(preset_names())
    assert f"(known: {', '.join(preset_names())})" in README


def _readme_commands() -> list[str]:
    """Every `bias-audit ...` command in the README's shell blocks (continuations joined, comments cut)."""
    commands = []
    for block in re.findall(r"```(?:bash|sh)\n(.*?)```", README, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            for part in re.split(r"&&|;", line):
                part = part.strip()
                if part.startswith("bias-audit ") and "..." not in part:
                    commands.append(part)
    return commands


def test_every_readme_command_parses():
    """Each command's subcommand and options are the CLI's (the run itself needs models and data)."""
    import shlex

    commands = _readme_commands()
    assert len(commands) >= 5
    parser = _parser()
    for command in commands:
        try:
            parser.parse_args(shlex.split(command)[1:])
        except SystemExit as exc:
            raise AssertionError(f"README command does not parse: {command}") from exc


def test_cheap_readme_commands_run(capsys):
    """The commands that need no model or data run as written."""
    from audit.cli import main

    for command in ("bias-audit list presets", "bias-audit completion bash"):
        assert command in README or command.split()[1] in README
        assert main(command.split()[1:]) == 0
    assert "default" in capsys.readouterr().out


# --- The doc test: every shell block of the README runs, as written or as the smaller variant it declares ---

from shared_data import bbq_dir, crows_pairs_dir, winobias_dir  # noqa: E402  (tests/ is on sys.path: conftest)

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(?:<!-- doc-test variant: (?P<why>[^\n]*)\n(?P<variant>.*?)\n-->\n)?```(?:bash|sh)\n(?P<body>.*?)```", re.S)
SUBCOMMAND = re.compile(r"(?:bias-audit|audit\.cli)\s+([a-z]+)")
PRELUDE = """set -eo pipefail
# the CLI of this checkout; exit 1 is an audit's documented 'a gate failed', not a broken command
bias-audit() { python -m audit.cli "$@" || { rc=$?; [ "$rc" -eq 1 ] || return "$rc"; }; }
"""


def readme_blocks() -> list[dict]:
    """Each ```bash block with the variant declared just before it (``<!-- doc-test variant: WHY``, the
    commands, ``-->``), if any."""
    return [{"body": m["body"], "variant": m["variant"], "why": m["why"], "line": README[:m.start("body")].count("\n") + 1}
            for m in BLOCK.finditer(README)]


BLOCKS = readme_blocks()


def test_every_variant_runs_the_commands_of_its_block():
    """A smaller variant is the same commands on less: every bias-audit subcommand of the block is in it."""
    assert len(BLOCKS) >= 8 and sum(b["variant"] is not None for b in BLOCKS) >= 5
    for block in BLOCKS:
        if block["variant"] is not None:
            assert block["why"].strip(), f"README line {block['line']}: a variant says why it is smaller"
            missing = set(SUBCOMMAND.findall(block["body"])) - set(SUBCOMMAND.findall(block["variant"]))
            assert not missing, f"README line {block['line']}: the variant leaves out {sorted(missing)}"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tiny_model_dir) -> dict:
    """One folder for the whole README, read in order (a later block reads an earlier block's outputs);
    the README's placeholders stand for the tiny test model and the official data beside the checkout."""
    folder = tmp_path_factory.mktemp("readme")
    (folder / "fairness_tests").symlink_to(REPO / "fairness_tests")
    data = {"/path/to/winobias": winobias_dir(), "path/to/bbq/data": bbq_dir() and bbq_dir() / "data",
            "path/to/crows_pairs": crows_pairs_dir()}
    places = {"/path/to/your-model-dir": str(tiny_model_dir), "/path/to/hf-model-dir": str(tiny_model_dir)}
    return {"folder": folder, "data": data, "places": places, "model": str(tiny_model_dir)}


@pytest.mark.parametrize("block", BLOCKS, ids=[f"README-line-{b['line']}" for b in BLOCKS])
def test_readme_block_runs(block, workdir):
    script = block["variant"] if block["variant"] is not None else block["body"]
    for placeholder, path in workdir["data"].items():
        if placeholder in script:
            if path is None:
                pytest.skip(f"README line {block['line']}: no official data for {placeholder} beside the checkout")
            script = script.replace(placeholder, str(path))
    for placeholder, path in workdir["places"].items():
        script = script.replace(placeholder, path)
    script = re.sub(r"\bMODEL\b", workdir["model"], script)
    if "--pdf" in script and shutil.which("chromium") is None and not os.environ.get("BIAS_AUDIT_CHROMIUM"):
        pytest.skip(f"README line {block['line']}: --pdf needs Chromium (apt-get install chromium)")
    env = {**os.environ, "PYTHONPATH": str(REPO), "REPO": str(REPO), "PYTHONUNBUFFERED": "1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(["bash", "-c", PRELUDE + script], cwd=workdir["folder"], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, (f"README line {block['line']} exited {done.returncode}:\n{script}\n"
                                  f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
