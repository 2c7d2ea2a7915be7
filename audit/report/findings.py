"""One gate for people: its label, the sentence stating its number against its threshold, and what a failure means."""

from __future__ import annotations

from collections.abc import Mapping

from markupsafe import Markup, escape

from .format import DASH, is_number, slug
from .labels import gate_spec_or_none, metric_label, short_label  # noqa: F401  (re-exported: the report's label of a gate)
from .quantities import Numbers, compared


def short_bound(text: str) -> str:
    """The compared value as a matrix cell shows it: its written decimals without the leading zero
    ('.842', '-.050', '.5997'); the same digits as everywhere else, so a fail never reads as a pass."""
    if text == DASH:
        return ""
    if text.strip("-.0") == "":
        text = text.lstrip("-")  # no '-.000'
    return text.replace("0.", ".", 1) if text.startswith(("0.", "-0.")) else text


NOT_AUDITABLE = "not auditable"
NOT_AUDITABLE_TEXT = ("Not auditable: the model does not do the task (its accuracy is below the floor), so its bias "
                      "cannot be judged. This is not a finding of bias.")


# Gates that ask whether the model does the task at all: failing one makes its bias figures unjudgeable.
TASK_GATES = frozenset({"accuracy", "bbq_accuracy_disambig"})


def is_task_gate(gate: Mapping) -> bool:
    """A gate on whether the model does the task (accuracy), not on its bias."""
    return str(gate.get("metric")) in TASK_GATES


def not_auditable(gate: Mapping) -> bool:
    """An outcome the statistics left undecided because the model does not do the task (reason
    'not auditable: ...', ``audit.gates.evaluate``): neither a pass nor a finding of bias."""
    return str(gate.get("reason") or "").lower().startswith(NOT_AUDITABLE)


def meaning(gate: Mapping) -> str:
    """What a failed (or waived) gate means for someone who does not read the metrics: the meaning the
    gate declares in the registry (recorded with the outcome), never guessed from its name."""
    if not_auditable(gate):
        return NOT_AUDITABLE_TEXT
    if gate.get("status") == "inconclusive":
        return ("The data cannot decide this gate: " + str(gate.get("reason") or gate.get("message") or "the interval "
                "is too wide or the effect is within the noise floor") + ". It neither passes nor fails the audit.")
    if gate.get("meaning"):
        return str(gate["meaning"])
    spec = gate_spec_or_none(str(gate.get("metric", "")))
    if spec is not None:
        return spec.meaning
    return str(gate.get("message") or "")


def finding(gate: Mapping, numbers: Numbers | None = None) -> Markup:
    """One sentence: the number, its interval, the bound used and how it compares with the threshold.
    The compared numbers carry enough decimals that a failing value never reads as meeting the threshold."""
    numbers = numbers or Numbers({"gates": [gate]})
    label = numbers.gate_label(gate)
    where = f"{gate.get('model', '?')} under {gate.get('condition', '?')}"
    if gate.get("estimate") is None:
        return escape(f"{label} for {where} was not measured.")
    estimate = numbers.show(numbers.gate_estimate_key(gate), label, gate["estimate"])
    text = escape(f"{label} for {where} is ") + estimate
    if gate.get("ci"):
        text += escape(f" (confidence interval {numbers.ci(gate['ci'], numbers.gate_range(gate))})")
    value, end = compared(gate)
    which = "estimate itself" if end == "estimate" else f"{end} end of the interval"
    return (text + escape(f"; the {which}, ") + bound_markup(gate, numbers, label)
            + escape(f", {side(value, gate)} {numbers.threshold_text(gate)}."))


def side(value, gate: Mapping) -> str:
    """Which side of the threshold the compared value lies, in words."""
    threshold, direction = gate.get("threshold"), gate.get("direction")
    if not (is_number(value) and is_number(threshold)) or direction not in ("max", "min"):
        return "is compared with the threshold,"
    if direction == "max":
        return "is within the maximum allowed," if value <= threshold else "exceeds the maximum allowed,"
    return "meets the minimum required," if value >= threshold else "is below the minimum required,"


def bound_label(gate: Mapping, label: str, numbers: Numbers) -> str:
    """The label of the compared value: the estimate's own, or '<label>: upper end of the interval'."""
    if numbers.gate_bound_key(gate) == numbers.gate_estimate_key(gate):
        return label
    return f"{label}: {compared(gate)[1]} end of the interval"


def bound_markup(gate: Mapping, numbers: Numbers, label: str) -> Markup:
    """The value the gate compared with its threshold, tagged (the estimate itself for a point gate)."""
    return numbers.show(numbers.gate_bound_key(gate), bound_label(gate, label, numbers), compared(gate)[0])


def _plain(value) -> str:
    return f"{value:g}" if is_number(value) else str(value if value is not None else DASH)


def relation(gate: Mapping) -> str:
    direction = gate.get("direction")
    return "\u2264" if direction == "max" else "\u2265" if direction == "min" else ""


def gate_view(index: int, gate: Mapping, numbers: Numbers | None = None) -> dict:
    numbers = numbers or Numbers({"gates": [gate]})
    short = short_label(str(gate.get("metric") or ""))
    label = numbers.gate_label(gate, short)
    bound_key = numbers.gate_bound_key(gate)
    value, end = compared(gate)
    bound_text = numbers.text(bound_key, value)
    threshold = numbers.threshold_text(gate)
    reason = str(gate.get("reason") or "")
    return {
        "id": str(gate.get("id", "")),
        "anchor": f"gate-{index}-{slug(gate.get('id', ''))}",
        "test": str(gate.get("test") or ""),
        "model": str(gate.get("model") or ""),
        "condition": str(gate.get("condition") or ""),
        "metric": str(gate.get("metric") or ""),
        "metric_label": str(gate.get("label") or metric_label(str(gate.get("metric") or ""))),
        "short_label": label,
        "estimate": numbers.show(numbers.gate_estimate_key(gate), label, gate.get("estimate")),
        "estimate_text": numbers.text(numbers.gate_estimate_key(gate), gate.get("estimate")),
        "ci": numbers.ci(gate.get("ci"), numbers.gate_range(gate)),
        "threshold": f"{relation(gate)} {threshold}".strip(),
        "threshold_rule": f"{relation(gate)} {_plain(gate.get('threshold'))}".strip(),
        "bound": "" if end == "estimate" else end,  # which end of the interval was compared
        "policy": str(gate.get("bound") or "point"),
        "bound_value": bound_text,
        "bound_markup": bound_markup(gate, numbers, label),
        "bound_short": short_bound(bound_text),
        "bound_cell": (numbers.show(bound_key, bound_label(gate, label, numbers), value,
                                    text=short_bound(bound_text)) if short_bound(bound_text) else Markup("")),
        "category": str(gate.get("category") or ""),
        "status": str(gate["status"]),
        "not_auditable": not_auditable(gate),
        "reason": reason,
        "rationale": str(gate.get("rationale") or ""),
        "message": str(gate.get("message") or ""),
        "waiver_reason": str(gate.get("waiver_reason") or ""),
        "finding": finding(gate, numbers),
        "meaning": meaning(gate),
    }
