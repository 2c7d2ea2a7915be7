"""Gates: a metric's confidence bound compared with a threshold. Pure functions, no pytest here."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

from audit.config import GateConfig
from audit.gates.registry import Direction, gate_spec

Status = Literal["pass", "fail", "waived", "skipped"]


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

    def __repr__(self) -> str:  # short, for pytest's assertion output
        return f"GateOutcome({self.id}: {self.status})"

    @property
    def passed(self) -> bool:
        return self.status == "pass"

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
    gate: GateConfig,
    *,
    model: str,
    condition: str,
    estimate: float,
    ci: tuple[float, float],
    n_answered: int,
    min_items: int,
    confidence: float = 0.95,
    precondition: tuple[bool, str] | None = None,
) -> GateOutcome:
    """Compare the configured bound of ``metric`` with its threshold.

    ``bound`` = "upper" / "lower" uses that end of the confidence interval (so a "max" gate with the
    upper bound passes only when the metric is confidently within the threshold), "point" the estimate.
    ``precondition`` (holds, why-not): when it does not hold, the gate passes without comparing
    (used by the transfer gate: high transfer matters only when the bare model is biased).
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
    sign = "<=" if direction == "max" else ">="
    bound_text = "estimate" if gate.bound == "point" else f"{gate.bound} {level} bound"
    verdict = "within" if ok else "outside"
    message = (
        f"{what} under '{condition}' for {model}: estimate {_fmt(est)} [{_fmt(lo)}, {_fmt(hi)}], "
        f"{bound_text} {_fmt(bound_value)} {verdict} threshold ({sign} {gate.threshold:g})"
    )
    return GateOutcome(**common, status="pass" if ok else "fail", message=message, warning=warning)
