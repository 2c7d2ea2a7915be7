"""The parts a dataset declares (``audit.datasets.report_data``: text, recorded quantities, numbers,
intervals, places) written as the report writes every number: one place for sentences and table cells."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from markupsafe import Markup, escape

from audit.datasets.report_data import Estimate, Interval, Number, Percent, Quantity, Where

from .format import fmt_estimate, fmt_num, fmt_pct, plural


def where(pairs: Sequence[tuple[str, str]]) -> str:
    """(model, condition) pairs: 'm under c, ...', or their count and models when there are more than three."""
    if len(pairs) <= 3:
        return ", ".join(f"{m} under {c}" for m, c in pairs)
    models = sorted({m for m, _ in pairs})
    return f"{plural(len(pairs), 'condition')} ({', '.join(models)})"


def plain(part, numbers=None) -> str:
    """One part as plain text (a recorded quantity as its written value, untagged)."""
    if isinstance(part, str):
        return part
    if isinstance(part, Quantity):
        key = numbers.key(part.model, part.condition, part.field)
        return numbers.text(key, numbers.field_value(part.model, part.condition, part.field), sign=part.sign)
    if isinstance(part, Interval):
        return numbers.ci(part.ci, numbers.value_range(part.field))
    if isinstance(part, Number):
        return fmt_num(part.value, part.digits, sign=part.sign, **({} if part.missing is None else {"missing": part.missing}))
    if isinstance(part, Estimate):
        return fmt_estimate(part.value, part.ci, part.digits, sign=part.sign)
    if isinstance(part, Percent):
        return fmt_pct(part.value, part.digits, **({} if part.missing is None else {"missing": part.missing}))
    if isinstance(part, Where):
        return where(list(part.pairs))
    raise TypeError(f"not a part of a declared sentence: {part!r}")


def written(parts: Iterable, numbers) -> str | Markup:
    """A sentence: plain text, or escaped Markup with each recorded quantity tagged by the register
    (``Numbers.field``) when it holds one."""
    parts = list(parts)
    if not any(isinstance(p, Quantity) for p in parts):
        return "".join(plain(p, numbers) for p in parts)
    return Markup("").join(numbers.field(p.model, p.condition, p.field, sign=p.sign) if isinstance(p, Quantity)
                           else escape(plain(p, numbers)) for p in parts)
