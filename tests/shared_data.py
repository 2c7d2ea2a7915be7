"""Where tests find the official WinoBias files: ../shared/winobias beside the repository, else
$BIAS_AUDIT_WINOBIAS_DIR. Tests that need them skip cleanly when neither exists (``needed``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def needed(found: T | None, missing: str) -> T:
    """``found``, or skip the test saying what is ``missing``."""
    if found is None:
        import pytest

        pytest.skip(missing)
    return found


def winobias_dir() -> Path | None:
    beside = Path(__file__).resolve().parents[1] / ".." / "shared" / "winobias"
    for candidate in (beside, Path(os.environ.get("BIAS_AUDIT_WINOBIAS_DIR", "") or beside)):
        if candidate.is_dir():
            return candidate
    return None


def bbq_dir() -> Path | None:
    """The official BBQ folder (README, templates/, data/): ../shared/bbq, else $BIAS_AUDIT_BBQ_DIR."""
    beside = Path(__file__).resolve().parents[1] / ".." / "shared" / "bbq"
    for candidate in (beside, Path(os.environ.get("BIAS_AUDIT_BBQ_DIR", "") or beside)):
        if (candidate / "data").is_dir() and (candidate / "templates").is_dir():
            return candidate
    return None


def crows_pairs_dir() -> Path | None:
    """The official CrowS-Pairs folder (crows_pairs_anonymized.csv): ../shared/crows_pairs, else $BIAS_AUDIT_CROWS_PAIRS_DIR."""
    beside = Path(__file__).resolve().parents[1] / ".." / "shared" / "crows_pairs"
    for candidate in (beside, Path(os.environ.get("BIAS_AUDIT_CROWS_PAIRS_DIR", "") or beside)):
        if (candidate / "crows_pairs_anonymized.csv").is_file():
            return candidate
    return None
