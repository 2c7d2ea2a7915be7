"""One gate for people: its label, the sentence stating its number against its threshold, and what a failure means."""

from __future__ import annotations

from collections.abc import Mapping

from .format import fmt_ci, fmt_num, slug


def short_bound(value) -> str:
    """The bound as a matrix cell shows it: two decimals, no leading zero ('.84', '-.05')."""
    if isinstance(value, float) and round(value, 2) == 0:
        value = 0.0  # no '-.00'
    text = fmt_num(value, 2, missing="", tiny=False)
    return text.replace("0.", ".", 1) if text.startswith(("0.", "-0.")) else text


def _spec(metric: str):
    """The gate's registry entry (its label, short label and meaning), or None for a gate no longer registered."""
    import audit.datasets  # noqa: F401  (registers each dataset's gates)
    from audit.gates import all_gates

    return all_gates().get(metric)


def metric_label(metric: str) -> str:
    spec = _spec(metric)
    return spec.label if spec is not None else metric


def short_label(metric: str) -> str:
    """A gate row's label in the matrix and the summary (``GateSpec.short``, else the label)."""
    spec = _spec(metric)
    return (spec.short or spec.label) if spec is not None else metric


def meaning(gate: Mapping) -> str:
    """What a failed (or waived) gate means for someone who does not read the metrics: the meaning the
    gate declares in the registry (recorded with the outcome), never guessed from its name."""
    if gate.get("status") == "inconclusive":
        return ("The data cannot decide this gate: " + str(gate.get("reason") or gate.get("message") or "the interval "
                "is too wide or the effect is within the noise floor") + ". It neither passes nor fails the audit.")
    if gate.get("meaning"):
        return str(gate["meaning"])
    spec = _spec(str(gate.get("metric", "")))
    if spec is not None:
        return spec.meaning
    return str(gate.get("message") or "")


def finding(gate: Mapping) -> str:
    """One sentence: the number, its interval, the bound used and how it compares with the threshold."""
    where = f"{gate.get('model', '?')} under {gate.get('condition', '?')}"
    if gate.get("estimate") is None:
        text = f"{metric_label(str(gate.get('metric', '')))} for {where} was not measured."
        return text[:1].upper() + text[1:]
    text = f"{metric_label(str(gate.get('metric', '')))} for {where} is {fmt_num(gate['estimate'])}"
    if gate.get("ci"):
        text += f" (confidence interval {fmt_ci(gate['ci'])})"
    bound = gate.get("bound", "point")
    limit = "maximum allowed" if gate.get("direction") == "max" else "minimum required"
    which = "estimate itself" if bound == "point" else f"{bound} bound of the interval"
    text = (f"{text}; the {which}, {fmt_num(gate.get('bound_value'))}, is compared with the {limit}, "
            f"{fmt_num(gate.get('threshold'))}.")
    return text[:1].upper() + text[1:]


def gate_view(index: int, gate: Mapping) -> dict:
    direction = gate.get("direction")
    relation = "\u2264" if direction == "max" else "\u2265" if direction == "min" else ""
    return {
        "id": str(gate.get("id", "")),
        "anchor": f"gate-{index}-{slug(gate.get('id', ''))}",
        "test": str(gate.get("test") or ""),
        "model": str(gate.get("model") or ""),
        "condition": str(gate.get("condition") or ""),
        "metric": str(gate.get("metric") or ""),
        "metric_label": str(gate.get("label") or metric_label(str(gate.get("metric") or ""))),
        "short_label": short_label(str(gate.get("metric") or "")),
        "estimate": fmt_num(gate.get("estimate")),
        "ci": fmt_ci(gate.get("ci")),
        "threshold": f"{relation} {fmt_num(gate.get('threshold'))}".strip(),
        "bound": str(gate.get("bound") or ""),
        "bound_value": fmt_num(gate.get("bound_value")),
        "bound_text": " ".join(x for x in (str(gate.get("bound") or ""), fmt_num(gate.get("bound_value"))) if x != "\u2014"),
        "bound_short": short_bound(gate.get("bound_value")),
        "category": str(gate.get("category") or ""),
        "status": str(gate["status"]),
        "reason": str(gate.get("reason") or ""),
        "rationale": str(gate.get("rationale") or ""),
        "message": str(gate.get("message") or ""),
        "waiver_reason": str(gate.get("waiver_reason") or ""),
        "finding": finding(gate),
        "meaning": meaning(gate),
    }
