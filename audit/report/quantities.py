"""One label and one written value per number: the report's register of the quantities it shows.

A quantity is one number of the record: a model's statistic under a condition (one of the fields the
record's dataset declares, ``Dataset.report_fields``, or the transfer r every dataset has) or a gate's
interval end. Wherever the page shows it (summary, matrix, gate details, tables) it is written by
:meth:`Numbers.show`: with the same label, the same decimals and a ``<data>`` element that names the
quantity (``data-q``) and its label (``data-label``), so a test can check that no label stands for two
numbers and no number carries two labels or two values.

A gate whose estimate *is* a recorded statistic (the dataset declares which, ``Dataset.report_gate_fields``)
is labelled with that statistic's label, checked against the record value by value, so the matrix's row,
the summary and the tables agree. Decimals grow where a value is compared with its threshold
(:func:`fmt_compared`), and then everywhere that value is shown.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from markupsafe import Markup

from audit.datasets.report_data import TRANSFER_FIELDS

from .format import DASH, fmt_compared, fmt_num, interval, is_number
from .labels import gate_spec_or_none, short_label
from .recorded import record_dataset

DIGITS = 3
SAFE_LABEL = re.compile(r"[\w |()\-\u2212:,.]+")  # labels of the register and the gate registry: no markup


def clip_interval(ci: Any, bounds: tuple[float, float] | None) -> tuple[float, float] | None:
    """The interval inside the statistic's range (a bootstrap end past 1 for a share reads as 1)."""
    pair = interval(ci)
    if pair is None or bounds is None:
        return pair
    lo, hi = bounds
    return min(max(pair[0], lo), hi), min(max(pair[1], lo), hi)


def compared(gate: Mapping) -> tuple[Any, str]:
    """The value that decided the gate and which it is ("estimate", "lower" or "upper" end of the interval).

    The one rule (``audit.stats.decision``): the whole interval beyond the limit fails (the end nearest the
    limit shows it), the whole interval within passes (the end farthest from zero shows it); a straddling
    interval is decided by the policy: ``fail_only_when_shown`` passes (the near end is within),
    ``pass_only_when_shown`` fails and ``interval`` is inconclusive (the far end is beyond). ``point``: the
    estimate. Computed here rather than read from ``bound_value`` so that the number shown always stands
    on the side of the threshold its outcome says."""
    policy, direction = str(gate.get("bound") or "point"), gate.get("direction")
    pair = interval(gate.get("ci"))
    if policy in ("upper", "lower") and pair is not None:  # the legacy one-sided policies compare the end they name
        return (pair[1] if policy == "upper" else pair[0]), policy
    threshold = gate.get("threshold")
    if policy == "point" or pair is None or direction not in ("max", "min") or not is_number(threshold):
        value = gate.get("estimate") if policy == "point" or pair is None else gate.get("bound_value")
        return value, "estimate" if policy == "point" or pair is None else str(gate.get("bound") or "estimate")
    lo, hi = pair
    beyond_end, within_end = (("lower", lo), ("upper", hi)) if direction == "max" else (("upper", hi), ("lower", lo))
    beyond = lo > threshold if direction == "max" else hi < threshold
    within = hi <= threshold if direction == "max" else lo >= threshold
    end, value = beyond_end if beyond or (not within and policy == "fail_only_when_shown") else within_end
    return value, end


def same(a: Any, b: Any) -> bool:
    return is_number(a) and is_number(b) and abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(a)))


class Numbers:
    """The register for one report: keys, labels and decimals, then the written values."""

    def __init__(self, results: Mapping):
        self._digits: dict[str, int] = {}
        dataset = record_dataset(results)
        self.fields = {**TRANSFER_FIELDS, **(dataset.report_fields if dataset is not None else {})}
        self._gate_fields = dict(dataset.report_gate_fields) if dataset is not None else {}
        self._conditions = {(str(m.get("name")), str(c)): v for m in results.get("models") or [] if isinstance(m, Mapping)
                            for c, v in (m.get("conditions") or {}).items() if isinstance(v, Mapping)}
        self._transfer = {(str(m.get("name")), str(c)): t for m in results.get("models") or [] if isinstance(m, Mapping)
                          for c, t in (m.get("transfer") or {}).items() if isinstance(t, Mapping)}
        for gate in results.get("gates") or []:
            if isinstance(gate, Mapping):
                self._widen(gate)

    # --- keys and labels ---------------------------------------------------------------------------

    def label(self, field: str) -> str:
        """A field's declared label; an undeclared field (not the record's dataset's) by its name."""
        declared = self.fields.get(field)
        return declared.label if declared is not None else field

    def value_range(self, field: str) -> tuple[float, float] | None:
        declared = self.fields.get(field)
        return declared.value_range if declared is not None else None

    def field_value(self, model: str, condition: str, field: str) -> Any:
        declared = self.fields.get(field)
        if declared is None:
            return None
        return declared.value(self._conditions.get((model, condition)) or {}, self._transfer.get((model, condition)))

    def gate_field(self, gate: Mapping) -> str | None:
        """The recorded statistic this gate's estimate is, or None (a statistic of the gate's own)."""
        field = self._gate_fields.get(str(gate.get("metric")))
        if field and same(gate.get("estimate"), self.field_value(str(gate.get("model")), str(gate.get("condition")), field)):
            return field
        return None

    @staticmethod
    def key(model: str, condition: str, what: str) -> str:
        """A quantity's key: its scope (model and condition) and a digest of what it is, so that no name from
        the data reaches an attribute."""
        return f"{Numbers.scope(model, condition)}-{hashlib.sha256(what.encode()).hexdigest()[:10]}"

    @staticmethod
    def scope(model: str, condition: str) -> str:
        return "s" + hashlib.sha256(repr((model, condition)).encode()).hexdigest()[:12]

    def gate_estimate_key(self, gate: Mapping) -> str:
        field = self.gate_field(gate)
        what = field or f"gate:{gate.get('metric')}"
        return self.key(str(gate.get("model")), str(gate.get("condition")), what)

    def gate_bound_key(self, gate: Mapping) -> str:
        value, end = compared(gate)
        if end == "estimate":
            return self.gate_estimate_key(gate)
        return self.key(str(gate.get("model")), str(gate.get("condition")), f"gate:{gate.get('metric')}:{end}")

    def gate_label(self, gate: Mapping, registry_short: str | None = None) -> str:
        """The label of the gate's estimate: its statistic's label when it reads one (or measured nothing),
        else the gate's own short label from the registry."""
        metric = str(gate.get("metric"))
        field = self._gate_fields.get(metric)  # the statistic the gate declares it reads (keys are shared only when equal)
        if field:
            return self.label(field)
        if registry_short is None:
            registry_short = short_label(metric)
        return registry_short

    def metric_label(self, metric: str, gates: Any) -> str:
        """The label of a gate row (matrix, verdict): the label most of its gates carry."""
        labels = [self.gate_label(g) for g in gates if isinstance(g, Mapping) and str(g.get("metric")) == metric]
        if not labels:
            return short_label(metric)
        return max(dict.fromkeys(labels), key=labels.count)

    def gate_range(self, gate: Mapping) -> tuple[float, float] | None:
        field = self.gate_field(gate)
        if field:
            return self.value_range(field)
        spec = gate_spec_or_none(str(gate.get("metric")))
        return spec.value_range if spec is not None else None

    # --- decimals ----------------------------------------------------------------------------------

    def _widen(self, gate: Mapping) -> None:
        (value, _), threshold, direction = compared(gate), gate.get("threshold"), gate.get("direction")
        if not (is_number(value) and is_number(threshold) and direction in ("max", "min")):
            return
        shown, _ = fmt_compared(value, threshold, str(direction), DIGITS)
        digits = len(shown.split(".")[1]) if "." in shown and "e" not in shown else 17
        key = self.gate_bound_key(gate)
        self._digits[key] = max(self._digits.get(key, DIGITS), digits)

    def digits(self, key: str) -> int:
        return self._digits.get(key, DIGITS)

    def text(self, key: str, value: Any, *, sign: bool = False) -> str:
        digits = self.digits(key)
        if digits > 12 and is_number(value):
            return repr(float(value))
        return fmt_num(value, digits, sign=sign, tiny=False)

    def threshold_text(self, gate: Mapping) -> str:
        """The threshold with as many decimals as its compared value."""
        (value, _), threshold, direction = compared(gate), gate.get("threshold"), str(gate.get("direction"))
        if is_number(value) and is_number(threshold) and direction in ("max", "min"):
            return fmt_compared(value, threshold, direction, self.digits(self.gate_bound_key(gate)))[1]
        return fmt_num(threshold, DIGITS)

    # --- written values ----------------------------------------------------------------------------

    def show(self, key: str, label: str, value: Any, *, sign: bool = False, text: str | None = None) -> Markup:
        """``<data>`` holding the written value, naming its quantity and label; a dash when absent."""
        if not is_number(value):
            return Markup(DASH)
        written = text if text is not None else self.text(key, value, sign=sign)
        if not SAFE_LABEL.fullmatch(label):  # a label from the record (an unregistered gate): a digest instead
            label = "label-" + hashlib.sha256(label.encode()).hexdigest()[:12]
        return Markup('<data class="q" value="{v}" data-q="{k}" data-label="{l}">{t}</data>').format(
            v=repr(float(value)), k=key, l=label, t=written)

    def field(self, model: str, condition: str, field: str, *, sign: bool = False) -> Markup:
        """A recorded statistic of a model under a condition, labelled by its declared label."""
        key = self.key(model, condition, field)
        return self.show(key, self.label(field), self.field_value(model, condition, field), sign=sign)

    def field_plain(self, model: str, condition: str, field: str) -> str:
        """The written value of a recorded statistic, as plain text (charts, attributes)."""
        key = self.key(model, condition, field)
        return self.text(key, self.field_value(model, condition, field))

    def ci(self, ci: Any, bounds: tuple[float, float] | None, digits: int = DIGITS) -> str:
        """An interval inside the statistic's range, '[lo, hi]'; a dash when absent."""
        pair = clip_interval(ci, bounds)
        if pair is None:
            return DASH
        return f"[{fmt_num(pair[0], digits, tiny=False)}, {fmt_num(pair[1], digits, tiny=False)}]"
