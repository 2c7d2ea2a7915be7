"""The "Does prompting fix it?" section: each model's debiasing table (results.json ``models[*].debiasing``):
per strategy, the paired change in bias and accuracy against the reference condition, and whether
transfer persists (Sivakumar, Mackraz et al. 2025)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .format import fmt_estimate, interval


def _change(entry: Mapping) -> dict[str, Any]:
    change, ci = entry.get("change"), entry.get("ci")
    bounds = interval(ci)
    verdict = "" if bounds is None else ("lower" if bounds[1] < 0 else "higher" if bounds[0] > 0 else "no detectable change")
    return {"text": fmt_estimate(change, ci, sign=True), "verdict": verdict}


def debiasing_view(models: list[Mapping]) -> list[dict]:
    """One table per model that has a debiasing table: rows = strategies, columns = the overall metrics."""
    out = []
    for model in models:
        table = model.get("debiasing")
        if not isinstance(table, Mapping) or not table.get("strategies"):
            continue
        metrics: list[str] = []
        for s in table["strategies"]:
            for metric in ((s.get("change") or {}).get("overall") or {}):
                if metric not in metrics:
                    metrics.append(metric)
        rows = []
        for s in table["strategies"]:
            overall = (s.get("change") or {}).get("overall") or {}
            transfer = s.get("transfer") or {}
            persists = transfer.get("persists")
            rows.append({
                "strategy": str(s.get("strategy") or s.get("condition")),
                "condition": str(s.get("condition") or ""),
                "description": str(s.get("description") or ""),
                "changes": [_change(overall[m]) if isinstance(overall.get(m), Mapping) else {"text": "n/a", "verdict": ""}
                            for m in metrics],
                "transfer": "n/a" if not transfer else fmt_estimate(transfer.get("pearson"), transfer.get("pearson_ci"), sign=True),
                "persists": "yes" if persists else "no" if persists is False else "n/a",
            })
        ref_transfer = table.get("reference_transfer") or {}
        out.append({"model": str(model.get("name")), "reference": str(table.get("reference") or "zero_shot"),
                    "metrics": metrics, "rows": rows,
                    "reference_transfer": fmt_estimate(ref_transfer.get("pearson"), ref_transfer.get("pearson_ci"), sign=True)
                    if ref_transfer else "n/a"})
    return out
