"""The executive report's view: per gate kind and model, how many gates passed, failed or could not decide;
the outcomes that did not pass, most pressing first (capped so that the page prints on at most two
A4 pages); and once per gate kind what its failure means. Built from the gate views of :mod:`.findings`."""

from __future__ import annotations

from collections.abc import Sequence

from .findings import NOT_AUDITABLE_TEXT, is_task_gate
from .matrix import row_label

MAX_ATTENTION = 10  # rows of "what did not pass"; the rest are counted and stay in the full report
ORDER = ("fail", "not auditable", "inconclusive", "waived", "skipped", "pass")
CSS = {"not auditable": "not-auditable"}


def passes_when(view: dict) -> str:
    """The pass condition in a few words: 'estimate <= 0.15', 'interval <= 0.15' (the whole of it; a
    straddling interval is inconclusive), 'interval not wholly > 0.5' (fails only when shown beyond)."""
    policy, rule = view["policy"], view["threshold_rule"]
    relation, _, threshold = rule.partition(" ")
    upper_limit = relation == "\u2264"
    if policy == "point":
        return f"estimate {rule}"
    if policy in ("fail_only_when_shown", "lower" if upper_limit else "upper"):
        beyond = ">" if upper_limit else "<"
        return f"interval not wholly {beyond} {threshold}"
    return f"whole interval {rule}"


def _outcome(view: dict) -> str:
    return "not auditable" if view["not_auditable"] else view["status"]


def _pressing(view: dict) -> tuple:
    """Bias failures first, then a model that does not do the task, then what could not decide."""
    outcome = _outcome(view)
    task_fail = outcome == "fail" and is_task_gate(view)
    rank = ORDER.index(outcome) if outcome in ORDER else len(ORDER)
    return (rank + (0.5 if task_fail else 0), view["model"], view["condition"])


def executive_view(views: Sequence[dict], model_names: Sequence[str]) -> dict:
    models = list(dict.fromkeys([*model_names, *(v["model"] for v in views)]))
    metrics = list(dict.fromkeys(v["metric"] for v in views))
    rows, meanings = [], []
    for metric in metrics:
        mine = [v for v in views if v["metric"] == metric]
        cells = []
        for model in models:
            outcomes = [_outcome(v) for v in mine if v["model"] == model]
            cells.append([{"name": o, "n": outcomes.count(o), "css": CSS.get(o, o)}
                          for o in ORDER if o in outcomes])
        rules = list(dict.fromkeys(passes_when(v) for v in mine))
        rows.append({"label": row_label(mine), "rule": "; ".join(rules), "cells": cells})
        if any(v["status"] == "fail" and not v["not_auditable"] for v in mine) and mine[0]["meaning"]:
            failed = next(v for v in mine if v["status"] == "fail" and not v["not_auditable"])
            meanings.append((row_label(mine), failed["meaning"]))
    if any(v["not_auditable"] or (is_task_gate(v) and v["status"] == "fail") for v in views):
        meanings.append(("not auditable", NOT_AUDITABLE_TEXT))
    pending = sorted((v for v in views if v["status"] != "pass" and v["status"] != "skipped"), key=_pressing)
    return {"models": models, "rows": rows, "attention": pending[:MAX_ATTENTION],
            "more": max(0, len(pending) - MAX_ATTENTION), "meanings": meanings}
