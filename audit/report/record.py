"""Reading a results.json record for the report: one clear error naming the file for anything unusable.

(The lead moves reading results.json to ``audit/results/``; until then the report reads it here.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .._errors import AuditError

SCHEMA_VERSION = "1.0"
SUPPORTED_MAJOR = "1"
# what needs attention first; "inconclusive" comes from the noise-aware statistics (a bound that cannot decide)
STATUSES = ("fail", "inconclusive", "waived", "skipped", "pass")
_REQUIRED = {"verdict": str, "models": list, "gates": list, "occupations": list, "items": dict, "provenance": dict}



def load_results(path: str | Path) -> dict:
    """Read and check a results file; any problem is an :class:`AuditError` naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AuditError(f"{path}: results file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditError(f"{path}: cannot read the results file ({exc.__class__.__name__}: {exc})") from None
    try:
        results = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AuditError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})") from None
    check_results(results, str(path))
    return results


def check_results(results: Any, where: str = "results") -> None:
    """Raise :class:`AuditError` unless ``results`` has a supported schema version and the keys the report reads."""
    if not isinstance(results, dict):
        raise AuditError(f"{where}: expected a JSON object, found {type(results).__name__}")
    version = results.get("schema_version")
    if version is None:
        raise AuditError(f"{where}: no 'schema_version'; this is not a bias-audit results file")
    if not isinstance(version, str) or version.split(".")[0] != SUPPORTED_MAJOR:
        raise AuditError(
            f"{where}: schema_version {version!r} is not supported (this version of bias-audit reads {SCHEMA_VERSION})"
        )
    for key, kind in _REQUIRED.items():
        if key not in results:
            raise AuditError(f"{where}: missing key '{key}' (schema {version})")
        if not isinstance(results[key], kind):
            raise AuditError(f"{where}: '{key}' must be a JSON {'object' if kind is dict else 'array' if kind is list else 'string'}")
    for i, model in enumerate(results["models"]):
        if not isinstance(model, dict) or not isinstance(model.get("name"), str) or not isinstance(model.get("conditions"), dict):
            raise AuditError(f"{where}: models[{i}] needs a 'name' string and a 'conditions' object")
    for i, gate in enumerate(results["gates"]):
        if not isinstance(gate, dict) or gate.get("status") not in STATUSES:
            raise AuditError(f"{where}: gates[{i}] needs a 'status' of {', '.join(STATUSES)}")
