"""The gate matrix: per model, one row per gate and one column per condition (x category), a cell per gate.

A cell shows the gate's status (colour and symbol) and the bound compared with the threshold, and
links to the gate's line in the detail list further down (an anchor: no script needed). Each gate's
threshold and rationale is stated once, beside its row label, not once per cell. Columns are
(condition, category) pairs so that datasets with categories (BBQ) add sub-columns; a gate without
a ``category`` has the empty one. Unknown statuses and extra fields are shown as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .findings import meaning
from audit.results.io import STATUSES

SYMBOLS = {"pass": "\u2713", "fail": "\u2717", "inconclusive": "?", "waived": "w", "skipped": "\u2013",
           "not_auditable": "n/a"}


def _column(gate: Mapping) -> tuple[str, str]:
    return str(gate.get("condition") or ""), str(gate.get("category") or "")


def _columns(models: Sequence[Mapping], gates: Sequence[Mapping]) -> list[tuple[str, str]]:
    """Conditions in the record's order (models first, then any only gates name), categories within."""
    order: list[str] = []
    for model in models:
        order += [c for c in model.get("conditions") or {} if c not in order]
    order += [c for c, _ in map(_column, gates) if c not in order]
    used = list(dict.fromkeys(_column(g) for g in gates))
    return sorted(used, key=lambda col: (order.index(col[0]), col[1] != "", col[1]))


def _cell(views: list[dict]) -> dict:
    """One cell: the most pressing status of its gates (usually one gate) and their bounds."""
    rank = {s: i for i, s in enumerate(STATUSES)}
    views = sorted(views, key=lambda v: rank.get(v["status"], len(rank)))
    first = views[0]
    return {
        "status": first["status"],
        "symbol": SYMBOLS["not_auditable"] if first["not_auditable"] else SYMBOLS.get(first["status"], "\u2022"),
        "text": first["bound_cell"],
        "not_auditable": first["not_auditable"],
        # numbers and fixed words only: no text from the data reaches an attribute
        "title": "; ".join(f"{'not auditable' if v['not_auditable'] else v['status']}: estimate {v['estimate_text']} "
                           f"{v['ci']}, {v['bound'] or 'point'} value {v['bound_value']}, threshold {v['threshold']}"
                           for v in views),
        "anchor": first["anchor"],
        "more": len(views) - 1,
    }


def row_label(views: Sequence[dict]) -> str:
    """A gate row's label: the one most of its gates carry (all of them, unless one measured nothing)."""
    labels = [v["short_label"] for v in views]
    return max(dict.fromkeys(labels), key=labels.count)


POLICIES = {  # docs/statistics.md, for a reader of the matrix
    "point": "the estimate",
    "interval": "the whole interval (pass), beyond it (fail), else inconclusive:",
    "fail_only_when_shown": "fails only when the whole interval is beyond it; passes when within reach:",
    "pass_only_when_shown": "passes only when the whole interval is within it:",
    "upper": "the upper end of the interval", "lower": "the lower end of the interval",
}


def _policy_name(policy: str) -> str:
    return POLICIES.get(policy, f"{policy}:")


def _rule(views: Sequence[dict]) -> dict:
    """What a gate row tests, stated once: label, bound against threshold, and the rationale(s)."""
    thresholds = list(dict.fromkeys(f"{_policy_name(v['policy'])} {v['threshold_rule']}" for v in views))
    rationales = list(dict.fromkeys(v["rationale"] for v in views if v["rationale"]))
    return {"label": row_label(views), "long_label": views[0]["metric_label"], "metric": views[0]["metric"],
            "threshold": "; ".join(thresholds), "rationales": rationales,
            "meaning": meaning({"metric": views[0]["metric"]}) if any(v["status"] == "fail" for v in views) else ""}


def gate_matrix(models: Sequence[Mapping], views: Sequence[dict]) -> dict:
    """The matrix from the record's models and the gate views (see :func:`findings.gate_view`)."""
    columns = _columns(models, views)
    categories = any(cat for _, cat in columns)
    groups: list[tuple[str, int]] = []  # (condition, how many columns) for the header's first row
    for cond, _ in columns:
        if groups and groups[-1][0] == cond:
            groups[-1] = (cond, groups[-1][1] + 1)
        else:
            groups.append((cond, 1))
    names = list(dict.fromkeys([str(m.get("name")) for m in models] + [v["model"] for v in views]))
    blocks, rules = [], {}
    for model in names:
        mine = [v for v in views if v["model"] == model]
        metrics = list(dict.fromkeys(v["metric"] for v in mine))
        rows = []
        for metric in metrics:
            row_views = [v for v in mine if v["metric"] == metric]
            rules.setdefault(metric, []).extend(row_views)
            cells = []
            for col in columns:
                here = [v for v in row_views if (v["condition"], v["category"]) == col]
                cells.append(_cell(here) if here else None)
            counts = {s: sum(v["status"] == s for v in row_views) for s in STATUSES}
            rows.append({"metric": metric, "label": row_label(row_views), "cells": cells,
                         "failed": counts["fail"], "n": len(row_views)})
        if rows:
            blocks.append({"model": model, "rows": rows, "failed": sum(v["status"] == "fail" for v in mine)})
    return {
        "columns": [{"condition": c, "category": cat} for c, cat in columns],
        "groups": [{"condition": c, "span": n} for c, n in groups],
        "has_categories": categories,
        "blocks": blocks,
        "rules": [_rule(vs) for vs in rules.values()],
    }

