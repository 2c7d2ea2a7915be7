"""results.json: the record of a run, written once and read by every view of it (the report, the step
summary, a later run comparing itself with this one). The schema version lives here alone; the
schema is documented in docs/results-schema.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from audit.errors import AuditError
from audit.results.redaction import redact

SCHEMA_VERSION = "1.1"  # 1.1: noise-aware statistics, inconclusive gates, dataset, gate labels; coverage (complete, gates required/decided/deselected/replaced), verdict "incomplete" (readers accept 1.x)
SUPPORTED_MAJOR = "1"
RESULTS_FILE = "results.json"
STATUSES = ("fail", "inconclusive", "waived", "skipped", "pass")  # order of the gate table: what needs attention first
_REQUIRED = {"verdict": str, "models": list, "gates": list, "items": dict, "provenance": dict}


# --- reading --------------------------------------------------------------------


def read_results(path: str | Path, *, what: str | None = None) -> dict:
    """Read and check a results file; any problem is one :class:`AuditError` line naming the file
    (and the option it came from, ``what``, e.g. ``--approved``)."""
    path = Path(path)
    where = f"{what} '{path}'" if what else str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AuditError(f"{where}: results file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditError(f"{where}: cannot read the results file ({exc.__class__.__name__}: {exc})") from None
    text = text.removeprefix("\ufeff")
    try:
        results = json.loads(text, parse_constant=_reject_constant, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        raise AuditError(f"{where}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})") from None
    except _NotStrictJSON as exc:
        raise AuditError(f"{where}: {exc}") from None
    except RecursionError:
        raise AuditError(f"{where}: JSON nested too deeply to be a results file") from None
    check_results(results, where)
    return results


class _NotStrictJSON(ValueError):
    pass


def _reject_constant(name: str):
    """NaN and Infinity are not JSON (the audit writes null); a file holding them was not written by it."""
    raise _NotStrictJSON(f"holds {name}, which is not valid JSON (results.json writes an unmeasured number as null)")


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > 18:
        raise _NotStrictJSON(f"holds an integer of {len(digits.lstrip('-'))} digits, too large for any results field")
    return int(digits)


def load_results(path: str | Path) -> dict:
    """``read_results`` for a results file named on its own (``bias-audit report RESULTS_JSON``)."""
    return read_results(path)


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
    from audit.results.check import check_record

    check_record(results, where)


# --- writing ------------------------------------------------------------------------------------------


def results_text(results: dict) -> str:
    """results.json's text: NaN/inf as null, every secret redacted (what the file and its views show)."""
    return redact(json.dumps(_json_safe(results), indent=2, sort_keys=False, allow_nan=False))


def write_results(results: dict, out_dir: Path) -> Path:
    """Write results.json atomically (a half-written record never replaces a good one); raises
    :class:`audit.results.atomic.OutputError` naming the file when it cannot be written."""
    from audit.results.atomic import write_atomic

    return write_atomic(Path(out_dir) / RESULTS_FILE, results_text(results), what="results")


def _json_safe(value):
    """NaN and inf are not JSON: they become null."""
    if isinstance(value, float):
        return None if value != value or value in (float("inf"), float("-inf")) else value
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value
