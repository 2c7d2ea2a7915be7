"""Where things live: the package's top-level folders (beside the package when installed, at the repository
root in a checkout) and the user's cache directory."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "BIAS_AUDIT_CACHE_DIR"

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """``templates`` or ``fairness_tests``: the installed copy (wheel) or the checkout's top-level folder."""
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"bias-transfer-audit is missing its '{name}' folder (looked in {_PACKAGE} and {_PACKAGE.parent})")


def templates_dir() -> Path:
    return resource_dir("templates")


def cache_dir() -> Path:
    """``$BIAS_AUDIT_CACHE_DIR``, else ``~/.cache/bias-transfer-audit``: the result cache, reference models,
    downloaded data sets."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "bias-transfer-audit"
