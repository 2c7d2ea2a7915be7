"""Secrets never leave the process: environment secrets and token-shaped strings are replaced by
[REDACTED] in everything written (results.json, the report, logs)."""

from __future__ import annotations

import os
import re

_SECRET_NAMES = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|ACCESS_KEY|CREDENTIAL", re.IGNORECASE)
_SECRET_SHAPES = re.compile(r"\bhf_[A-Za-z0-9]{20,}\b|\b(?:sk|ghp|gho|ghs|github_pat)_[A-Za-z0-9_]{20,}\b")


def secret_values() -> list[str]:
    """Values of environment variables whose names say they hold a secret (tokens, keys, passwords)."""
    return sorted((v for k, v in os.environ.items() if _SECRET_NAMES.search(k) and len(v) >= 6), key=len, reverse=True)


def redact(text: str, secrets: list[str] | None = None) -> str:
    """``text`` with secrets from the environment and token-shaped strings replaced by [REDACTED]."""
    for secret in secret_values() if secrets is None else secrets:
        text = text.replace(secret, "[REDACTED]")
    return _SECRET_SHAPES.sub("[REDACTED]", text)
