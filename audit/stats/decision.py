"""The one decision rule of every gate (docs/statistics.md), as pure functions on numbers: a two-sided
interval on the gate's estimand against its limit. ``audit.gates.evaluate`` applies it to a measured
gate; the simulations of ``audit.stats`` apply the same rule to simulated intervals."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from .confidence import Interval

Direction = Literal["max", "min"]
Status = Literal["pass", "fail", "inconclusive", "waived", "skipped"]


def policy_of(bound: str, direction: Direction) -> str:
    """The decision policy a configured ``bound`` names. The legacy ends map onto the one-sided policies:
    a "max" gate on its upper end passes only when the bias is shown within the limit, on its lower end
    fails only when it is shown beyond (and the reverse for a "min" gate)."""
    if bound in ("upper", "lower"):
        passes_on_shown = (bound == "upper") == (direction == "max")
        return "pass_only_when_shown" if passes_on_shown else "fail_only_when_shown"
    return bound


def decide(estimate: float, lo: float, hi: float, threshold: float, direction: Direction, policy: str) -> tuple[Status, str]:
    """The one decision rule (docs/statistics.md): ``[lo, hi]`` is a two-sided interval on the gate's estimand.

    *shown beyond* the limit (the whole interval outside it) -> fail; *shown within* (the whole interval
    inside) -> pass; otherwise the data show neither: ``interval`` -> inconclusive,
    ``fail_only_when_shown`` -> pass, ``pass_only_when_shown`` -> fail, ``point`` -> the estimate decides
    (no error control; kept for comparisons only)."""
    beyond = lo > threshold if direction == "max" else hi < threshold
    within = hi <= threshold if direction == "max" else lo >= threshold
    if beyond:
        return "fail", "shown beyond the limit (the whole interval is outside it)"
    if within:
        return "pass", "shown within the limit (the whole interval is inside it)"
    if policy == "fail_only_when_shown":
        return "pass", "not shown beyond the limit (policy fail_only_when_shown)"
    if policy == "pass_only_when_shown":
        return "fail", "not shown within the limit (policy pass_only_when_shown)"
    if policy == "point":
        ok = estimate <= threshold if direction == "max" else estimate >= threshold
        return ("pass" if ok else "fail"), "decided by the point estimate (bound = \"point\": no error control)"
    return "inconclusive", "the interval straddles the threshold: the data show the effect neither within nor beyond the limit"


@dataclass(frozen=True)
class Verdict:
    status: Status
    reason: str


def gate_verdict(
    interval: Interval, threshold: float, *, bound: str = "interval", accuracy: float | None = None,
    accuracy_floor: float | None = None,
) -> Verdict:
    """The verdict of a "max" bias gate on ``interval`` by the one decision rule (``decide``, which the gates apply)
    (for simulations that have no session): shown beyond -> fail whatever the accuracy; below the
    accuracy floor -> inconclusive ("not auditable"); else the policy ``bound`` decides."""
    if math.isnan(interval.estimate):
        return Verdict("inconclusive", "the statistic could not be measured (no usable units)")
    status, why = decide(interval.estimate, interval.lo, interval.hi, threshold, "max", policy_of(bound, "max"))
    if interval.lo <= threshold and accuracy is not None and accuracy_floor is not None and not accuracy >= accuracy_floor:
        return Verdict("inconclusive", f"not auditable: accuracy {accuracy:.3f} is below the floor {accuracy_floor:g}")
    return Verdict(status, why)
