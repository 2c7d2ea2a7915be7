"""Gates: a metric's confidence bound compared with a threshold. Pure functions, no pytest here."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

from audit.gates.registry import Direction, gate_spec
from audit.stats.intervals import Interval
from audit.stats.verdicts import gate_verdict

if TYPE_CHECKING:
    from audit.config import GateConfig  # a gate's setting; read, never built here

Status = Literal["pass", "fail", "inconclusive", "waived", "skipped"]


@dataclass
class GateOutcome:
    id: str
    model: str
    condition: str
    metric: str
    estimate: float | None
    ci: tuple[float | None, float | None]
    bound: str
    bound_value: float | None
    threshold: float
    direction: Direction
    status: Status
    rationale: str
    message: str
    label: str = ""
    meaning: str = ""
    test: str = ""
    waiver_reason: str | None = None
    warning: str | None = None
    reason: str | None = None  # why an inconclusive gate could not decide
    inconclusive_fails: bool = True  # config inconclusive = "fail" (default) or "warn"

    def __repr__(self) -> str:  # short, for pytest's assertion output
        return f"GateOutcome({self.id}: {self.status})"

    @property
    def passed(self) -> bool:
        """Pass, or inconclusive under ``inconclusive = "warn"``."""
        return self.status == "pass" or (self.status == "inconclusive" and not self.inconclusive_fails)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ci"] = list(self.ci)
        return d


def _clean(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def evaluate_gate(
    metric: str,
    gate: "GateConfig",
    *,
    model: str,
    condition: str,
    estimate: float,
    ci: tuple[float, float],
    n_answered: int,
    min_items: int,
    confidence: float = 0.95,
    precondition: tuple[bool, str] | None = None,
    noise_floor: float | None = None,
    noise_ratio: float = 0.5,
    accuracy: float | None = None,
    accuracy_floor: float | None = None,
    inconclusive_fails: bool = True,
) -> GateOutcome:
    """Compare the configured bound of ``metric`` with its threshold.

    ``bound`` = "upper" / "lower" uses that end of the confidence interval (so a "max" gate with the
    upper bound passes only when the metric is confidently within the threshold), "point" the estimate.
    ``precondition`` (holds, why-not): when it does not hold, the gate passes without comparing
    (used by the transfer gate: high transfer matters only when the bare model is biased).

    A bias ("max") gate given the model's ``accuracy`` and the statistic's ``noise_floor`` may be
    *inconclusive* (``audit.stats.verdicts.gate_verdict``): the model fails the accuracy floor, or the
    noise floor exceeds ``noise_ratio`` x the threshold so the items cannot tell a fair model from one
    at the threshold.
    """
    spec = gate_spec(metric)
    direction, what = spec.direction, spec.label
    est, lo, hi = _clean(estimate), _clean(ci[0]), _clean(ci[1])
    bound_value = {"point": est, "upper": hi, "lower": lo}[gate.bound]
    common = dict(
        id=f"{metric}[{model}-{condition}]", model=model, condition=condition, metric=metric, estimate=est,
        ci=(lo, hi), bound=gate.bound, bound_value=bound_value, threshold=gate.threshold, direction=direction,
        rationale=gate.rationale, label=spec.label, meaning=spec.meaning,
    )
    warning = None
    if n_answered < min_items:  # a floor, not a warning: too few answers decide nothing, so the gate fails
        warning = f"only {n_answered} answered items (< min_items = {min_items}): the sample is too small to decide"
        return GateOutcome(**common, status="fail", message=f"{what} under '{condition}' for {model}: {warning}", warning=warning)
    level = f"{confidence:.0%}"
    if precondition is not None and not precondition[0]:
        return GateOutcome(**common, status="pass", message=f"{what}: not applicable, {precondition[1]}", warning=warning)
    if bound_value is None:
        return GateOutcome(**common, status="skipped", message=f"{what} could not be measured under '{condition}' (no usable items)", warning=warning)
    ok = bound_value <= gate.threshold if direction == "max" else bound_value >= gate.threshold
    if direction == "max" and (noise_floor is not None or accuracy is not None):
        verdict = gate_verdict(Interval(est if est is not None else math.nan, lo if lo is not None else math.nan,
                                        hi if hi is not None else math.nan, math.nan, confidence),
                               gate.threshold, bound=gate.bound, noise_floor=noise_floor, noise_ratio=noise_ratio,
                               accuracy=accuracy, accuracy_floor=accuracy_floor)
        if verdict.status == "inconclusive":
            message = (f"{what} under '{condition}' for {model}: inconclusive: {verdict.reason} "
                       f"(estimate {_fmt(est)} [{_fmt(lo)}, {_fmt(hi)}], threshold {gate.threshold:g})")
            return GateOutcome(**common, status="inconclusive", message=message, warning=warning, reason=verdict.reason,
                               inconclusive_fails=inconclusive_fails)
    sign = "<=" if direction == "max" else ">="
    bound_text = "estimate" if gate.bound == "point" else f"{gate.bound} {level} bound"
    verdict = "within" if ok else "outside"
    message = (
        f"{what} under '{condition}' for {model}: estimate {_fmt(est)} [{_fmt(lo)}, {_fmt(hi)}], "
        f"{bound_text} {_fmt(bound_value)} {verdict} threshold ({sign} {gate.threshold:g})"
    )
    return GateOutcome(**common, status="pass" if ok else "fail", message=message, warning=warning)
