"""Where the package's data folders live: beside the package when installed, at the repository root in a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """``templates`` or ``fairness_tests``: the installed copy (wheel) or the checkout's top-level folder."""
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"bias-transfer-audit is missing its '{name}' folder (looked in {_PACKAGE} and {_PACKAGE.parent})")


def templates_dir() -> Path:
    return resource_dir("templates")
