"""The README is checked: its gate table is the registry's, every option and preset it names exists."""

from __future__ import annotations

import re
from pathlib import Path

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
