"""A results.json is checked field by field before anything believes it (``bias-audit report``,
``--approved``): every field a reader uses has its type, and the verdict is recomputed from the gate
outcomes, so an edited verdict or a string where a number belongs is one line naming the file."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from audit.errors import AuditError

VERDICTS = ("pass", "fail", "incomplete", "inconclusive")
_GATE_TEXT = ("id", "model", "condition", "metric", "bound", "direction", "label", "message", "rationale", "test",
              "waiver_reason", "warning", "reason", "meaning")
_GATE_NUMBERS = ("estimate", "bound_value", "threshold")
_COUNTS = ("n_items", "n_answered")

#: where the datasets' own summary fields come from: keys whose value is an object of numbers (or null) by
#: unit, with the unit's noun. ``audit.datasets`` sets it on import (``Dataset.summary_number_maps`` of every
#: registered dataset); this layer may not import the datasets.
_number_maps: Callable[[], Mapping[str, str]] = dict


def set_number_maps(source: Callable[[], Mapping[str, str]]) -> None:
    global _number_maps
    _number_maps = source


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number_or_null(value: Any) -> bool:
    return value is None or _is_number(value)


def _interval(value: Any) -> bool:
    return value is None or (isinstance(value, list) and len(value) == 2 and all(_number_or_null(v) for v in value))


def _fail(where: str, field: str, expected: str, value: Any) -> AuditError:
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:40] + "..."
    return AuditError(f"{where}: {field} must be {expected} (found {shown})")


def check_gate(gate: dict, i: int, where: str) -> None:
    for key in _GATE_TEXT:
        if gate.get(key) is not None and not isinstance(gate[key], str):
            raise _fail(where, f"gates[{i}].{key}", "a string or null", gate[key])
    for key in _GATE_NUMBERS:
        if not _number_or_null(gate.get(key)):
            raise _fail(where, f"gates[{i}].{key}", "a number or null", gate[key])
    if not _interval(gate.get("ci")):
        raise _fail(where, f"gates[{i}].ci", "null or [lower, upper] numbers", gate.get("ci"))
    if "inconclusive_fails" in gate and not isinstance(gate["inconclusive_fails"], bool):
        raise _fail(where, f"gates[{i}].inconclusive_fails", "true or false", gate["inconclusive_fails"])


def check_model(model: dict, i: int, where: str, number_maps: Mapping[str, str] | None = None) -> None:
    number_maps = _number_maps() if number_maps is None else number_maps
    for name, summary in model["conditions"].items():
        at = f"models[{i}].conditions.{name}"
        if not isinstance(summary, dict):
            raise _fail(where, at, "an object", summary)
        for key, value in summary.items():
            if key in _COUNTS and not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
                raise _fail(where, f"{at}.{key}", "a count (an integer >= 0)", value)
            if key.endswith("_ci") and not _interval(value):
                raise _fail(where, f"{at}.{key}", "null or [lower, upper] numbers", value)
            if key in number_maps and not (isinstance(value, dict) and all(_number_or_null(v) for v in value.values())):
                raise _fail(where, f"{at}.{key}", f"numbers by {number_maps[key]}", value)
    choices = model.get("choices", {})
    if not isinstance(choices, dict):
        raise _fail(where, f"models[{i}].choices", "an object", choices)
    for name, rows in choices.items():
        if not isinstance(rows, list):
            raise _fail(where, f"models[{i}].choices.{name}", "an array", rows)
        for j, row in enumerate(rows):
            at = f"models[{i}].choices.{name}[{j}]"
            if not isinstance(row, dict) or not isinstance(row.get("item"), str):
                raise _fail(where, f"{at}.item", "a string", row.get("item") if isinstance(row, dict) else row)
            selected = row.get("selected")  # an option's text (WinoBias) or index (BBQ), or null
            if selected is not None and (isinstance(selected, bool) or not isinstance(selected, (str, int))):
                raise _fail(where, f"{at}.selected", "a string, an option index or null", selected)
            if row.get("correct") is not None and not isinstance(row["correct"], bool):
                raise _fail(where, f"{at}.correct", "true, false or null", row["correct"])
            scores = row.get("scores")
            if scores is not None and not (isinstance(scores, list) and all(_number_or_null(s) for s in scores)):
                raise _fail(where, f"{at}.scores", "an array of numbers", scores)


def expected_verdict(results: dict) -> str | None:
    """The verdict the gate outcomes imply (``audit.run.coverage.verdict``'s rule), or None when the file
    does not say enough to recompute it (then only a 'pass' beside a failing gate is refused)."""
    gates = results["gates"]
    replaced = (results.get("coverage") or {}).get("gates_replaced") or {}
    failed_tests = any(isinstance(r, dict) and r.get("outcome") == "failed"
                       for rs in replaced.values() if isinstance(rs, list) for r in rs) if isinstance(replaced, dict) else False
    if failed_tests or any(g["status"] == "fail" for g in gates):
        return "fail"
    complete = results.get("complete")
    if complete is False:
        return "incomplete"
    if any(g["status"] == "inconclusive" and g.get("inconclusive_fails") for g in gates):
        return "inconclusive"
    if complete is None:
        return None
    return "pass"


def check_record(results: dict, where: str) -> None:
    """Types of every field the readers use, and a verdict that agrees with the gates."""
    if results["verdict"] not in VERDICTS:
        raise _fail(where, "verdict", " or ".join(VERDICTS), results["verdict"])
    if "complete" in results and not isinstance(results["complete"], bool):
        raise _fail(where, "complete", "true or false", results["complete"])
    for i, gate in enumerate(results["gates"]):
        check_gate(gate, i, where)
    number_maps = _number_maps()
    for i, model in enumerate(results["models"]):
        check_model(model, i, where, number_maps)
    expected = expected_verdict(results)
    verdict = results["verdict"]
    n_fail = sum(g["status"] == "fail" for g in results["gates"])
    if (expected is not None and verdict != expected) or (expected is None and verdict == "pass" and n_fail):
        raise AuditError(f"{where}: verdict '{verdict}' contradicts its own gates ({n_fail} of {len(results['gates'])} "
                         f"fail; they imply '{expected or 'fail'}'): the file was edited or is corrupt; refusing to use it")
