"""Numbers and names for people: the one place the report, its charts and the terminal tables format values.

Absent values (``None``, NaN) read as an em dash in the page and ``n/a`` in plain text and charts
(``missing=``); intervals are ``[lo, hi]``; signs are shown only where the sign is the finding.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from markupsafe import Markup, escape

DASH = "\u2014"


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def fmt_num(value: Any, digits: int = 3, *, sign: bool = False, missing: str = DASH, tiny: bool = True) -> str:
    """Fixed decimals, ``missing`` when absent; ``sign`` writes '+' on positives; ``tiny`` writes values
    below the last decimal in scientific notation (p-values), else they read as 0.00."""
    if value is None or (isinstance(value, float) and value != value):
        return missing
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:+d}" if sign else str(value)
    plus = "+" if sign else ""
    if tiny and value != 0 and abs(value) < 10 ** -digits:
        return f"{value:{plus}.1e}"
    return f"{value:{plus}.{digits}f}"


def fmt_compared(value: Any, threshold: Any, direction: str, digits: int = 3, *, max_digits: int = 6) -> tuple[str, str]:
    """``value`` and ``threshold`` written with enough decimals that the written numbers compare as the
    true ones do: 0.5997 against ">= 0.6" reads 0.5997 and 0.6000, never 0.600 and 0.600.
    ``direction``: "max" (passes when value <= threshold) or "min"."""
    if not (is_number(value) and is_number(threshold)):
        return fmt_num(value, digits), fmt_num(threshold, digits)

    def passes(v: float, t: float) -> bool:
        return v <= t if direction == "max" else v >= t

    truth = passes(float(value), float(threshold))
    for d in range(digits, max_digits + 1):
        shown_v, shown_t = fmt_num(value, d, tiny=False), fmt_num(threshold, d, tiny=False)
        if passes(float(shown_v), float(shown_t)) == truth:
            return shown_v, shown_t
    return repr(float(value)), repr(float(threshold))  # closer than max_digits: every digit


def interval(ci: Any) -> tuple[float, float] | None:
    """``(lo, hi)`` when ``ci`` is a pair of numbers, else None."""
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(is_number(v) for v in ci):
        return float(ci[0]), float(ci[1])
    return None


def fmt_ci(ci: Any, digits: int = 3, *, sign: bool = False, missing: str = DASH, tiny: bool = True) -> str:
    pair = interval(ci)
    if pair is None:
        return missing
    return f"[{fmt_num(pair[0], digits, sign=sign, tiny=tiny)}, {fmt_num(pair[1], digits, sign=sign, tiny=tiny)}]"


def fmt_estimate(value: Any, ci: Any = None, digits: int = 2, *, sign: bool = False, missing: str = "n/a") -> str:
    """'0.84 [0.80, 0.88]': a value with its interval when it has one (fixed decimals throughout)."""
    text = fmt_num(value, digits, sign=sign, missing=missing, tiny=False)
    if value is not None and interval(ci) is not None:
        text += " " + fmt_ci(ci, digits, sign=sign, tiny=False)
    return text


def fmt_pct(value: Any, digits: int = 1, *, missing: str = DASH) -> str:
    return missing if not is_number(value) else f"{100 * value:.{digits}f}%"


def fmt_value(value: Any) -> str:
    """A provenance value: text as is, structures as compact JSON, null as 'none'."""
    if value is None:
        return "none"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return fmt_num(value, 4) if isinstance(value, float) else str(value)


def slug(*parts: Any) -> str:
    """An HTML id from arbitrary text: only [a-z0-9-], so names from the data never reach an attribute raw."""
    text = "-".join(str(p) for p in parts).lower()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "x"


def breakable(text: Any) -> Markup:
    """Escaped text that may wrap after '_' (long condition names in narrow table headers)."""
    return Markup("_<wbr>").join(escape(part) for part in str(text).split("_"))


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"
