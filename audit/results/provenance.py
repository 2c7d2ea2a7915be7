"""Provenance of a run: package versions, git commit, hardware, command line."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata

import torch

PACKAGES = ("bias-transfer-audit", "torch", "transformers", "tokenizers", "numpy", "scipy", "jinja2", "pytest")


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(cwd: str | None = None) -> str | None:
    """HEAD of the git repository the audit runs in (the audited project), if any."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def hardware(device: str) -> dict:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"device": device, "gpu": gpu, "platform": platform.platform(), "cpu_threads": torch.get_num_threads()}


def command_line() -> str:
    return " ".join([sys.argv[0].rsplit("/", 1)[-1], *sys.argv[1:]])
