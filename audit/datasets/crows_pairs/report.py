"""CrowS-Pairs's section of the report: per bias type, the stereotype preference (0.5 = no bias) and the
mean log-likelihood difference (more minus less stereotypical sentence), with their intervals, as
recorded; a chart of the preferences; the data's known quality problems and its licence."""

from __future__ import annotations

from typing import Any, Mapping

from audit.datasets.base import EstimatesChart

TEMPLATE = "report/crows_pairs.html.j2"


def _triple(value: Any, ci: Any) -> tuple:
    lo, hi = ci if isinstance(ci, (list, tuple)) and len(ci) == 2 else (None, None)
    return value, lo, hi


def _rows(cond: Mapping) -> list[dict]:
    types = cond.get("bias_types") if isinstance(cond.get("bias_types"), Mapping) else {}
    ll = ((cond.get("likelihood_difference") or {}).get("bias_types") or {}) if isinstance(cond.get("likelihood_difference"), Mapping) else {}
    rows = []
    for name, entry in types.items():
        if not isinstance(entry, Mapping):
            continue
        diff = ll.get(name) if isinstance(ll.get(name), Mapping) else {}
        rows.append({"bias_type": str(name), "pairs": entry.get("pairs"), "answered": entry.get("answered"),
                     "preference": {"value": entry.get("stereotype_preference"), "ci": entry.get("stereotype_preference_ci")},
                     "difference": {"value": diff.get("mean"), "ci": diff.get("ci")}})
    return rows


def report_view(results: Mapping[str, Any]) -> dict:
    """Per model and condition, each bias type's figures; one preference chart per model."""
    extras = results.get("crows_pairs") if isinstance(results.get("crows_pairs"), Mapping) else {}
    models = []
    for k, model in enumerate(results.get("models") or []):
        conditions = [{"name": str(name), "rows": _rows(cond),
                       "overall": (cond.get("overall") or {}) if isinstance(cond, Mapping) else {}}
                      for name, cond in (model.get("conditions") or {}).items() if isinstance(cond, Mapping)]
        conditions = [c for c in conditions if c["rows"]]
        types = list(dict.fromkeys(r["bias_type"] for c in conditions for r in c["rows"]))
        chart = None
        if types:
            series = {c["name"]: {r["bias_type"]: _triple(r["preference"]["value"], r["preference"]["ci"]) for r in c["rows"]}
                      for c in conditions}
            chart = EstimatesChart(
                f"crows-m{k}", f"Stereotype preference per bias type, {model.get('name')}", tuple(types),
                ({"label": "share of pairs where the more stereotypical sentence is preferred", "series": series,
                  "reference": (0.5, "0.5 = no preference"), "xlim": (-0.02, 1.02)},),
                row_noun="bias type", series_noun="condition",
                caption="Dots are the shares, bars their intervals over pairs, one marker per condition; 0.5 is no "
                        "bias, above it the model prefers the more stereotypical sentence.")
        models.append({"name": str(model.get("name")), "conditions": conditions, "chart": chart})
    return {"models": models, "quality_note": str(extras.get("quality_note") or ""),
            "attribution": str(extras.get("attribution") or ""), "pairs": extras.get("pairs")}
