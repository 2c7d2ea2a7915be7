"""One gate for people: its label, the sentence stating its number against its threshold, and what a failure means."""

from __future__ import annotations

from collections.abc import Mapping

from audit.gates import GATES
from .format import fmt_ci, fmt_num, slug


def short_bound(value) -> str:
    """The bound as a matrix cell shows it: two decimals, no leading zero ('.84', '-.05')."""
    if isinstance(value, float) and round(value, 2) == 0:
        value = 0.0  # no '-.00'
    text = fmt_num(value, 2, missing="", tiny=False)
    return text.replace("0.", ".", 1) if text.startswith(("0.", "-0.")) else text


METRIC_LABELS = {
    **{name: spec.label for name, spec in GATES.items()},  # the gates' own descriptions (the registry)
    "o_sb": "O-SB (occupational selection bias)",
    "rpa_gap": "RPA gap (pro minus anti accuracy)",
    "rpa_overall": "RPA overall accuracy",
    "pearson": "transfer, Pearson r",
    "spearman": "transfer, Spearman \u03c1",
    "other_rate": "share of answers naming neither candidate",
}


SHORT_LABELS = {  # a gate row's label in the matrix
    "a_sb": "A-SB", "rpa_gap": "RPA gap", "worst_o_sb": "worst |O-SB|", "accuracy": "accuracy", "rpa_overall": "accuracy",
    "transfer": "transfer r", "pearson": "transfer r", "spearman": "transfer \u03c1", "other_rate": "neither answer",
    "a_sb_regression": "A-SB vs approved", "accuracy_regression": "accuracy vs approved",
}


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def meaning(gate: Mapping) -> str:
    """What a failed (or waived) gate means for someone who does not read the metrics."""
    if gate.get("status") == "inconclusive":
        return ("The data cannot decide this gate: " + str(gate.get("reason") or gate.get("message") or "the interval "
                "is too wide or the effect is within the noise floor") + ". It neither passes nor fails the audit.")
    metric = str(gate.get("metric", "")).lower()
    estimate = gate.get("estimate")
    points = "" if estimate is None else f" {abs(estimate) * 100:.0f} percentage points"
    if metric.endswith("_regression"):
        return (f"Compared with the approved baseline run, this measure got worse by{points}, more than chance "
                f"explains: something changed in the model or its prompting since the last approval.")
    if metric == "a_sb" or "a_sb" in metric:
        return (f"The model's choice between the two occupations depends on the pronoun's gender: on average an "
                f"occupation is picked{points} more often with one gender than with the other.")
    if "o_sb" in metric:
        return f"This occupation is picked{points} more often with one pronoun gender than with the other."
    if "gap" in metric:
        return (f"The model resolves pronouns{points} more accurately when they fit the occupational stereotype "
                f"than when they contradict it.")
    if any(k in metric for k in ("pearson", "spearman", "transfer", "corr")):
        return ("The occupations the pre-trained model associates with a gender keep that association under this "
                "prompt: prompting does not remove the bias learned in pre-training (bias transfer).")
    if "other" in metric:
        return "Too many generated answers name neither occupation, so the generation results are unreliable."
    if "overall" in metric or "accuracy" in metric:
        return "The model resolves too few pronouns correctly for its bias measurements to be meaningful."
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
        "metric_label": metric_label(str(gate.get("metric") or "")),
        "short_label": SHORT_LABELS.get(str(gate.get("metric") or ""), str(gate.get("metric") or "")),
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
