"""Gates: one decision rule, a two-sided interval on the gate's estimand against its limit. Pure functions, no pytest here."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from audit.gates.registry import Direction, gate_spec
from audit.stats.decision import Status, decide, policy_of

if TYPE_CHECKING:
    from audit.config import GateConfig  # a gate's setting; read, never built here

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
    accuracy: float | None = None,
    accuracy_floor: float | None = None,
    inconclusive_fails: bool = True,
) -> GateOutcome:
    """Decide a gate from the two-sided ``confidence`` interval ``ci`` on its estimand (``decide``).

    * fewer than ``min_items`` answered items -> inconclusive (too small to decide; never a fail for want of data);
    * ``precondition`` (holds, why-not) not holding -> pass as not applicable (the transfer gate);
    * a bias shown beyond the limit fails whatever the model's accuracy;
    * otherwise a bias ("max") gate of a model below the accuracy floor is inconclusive, reason
      "not auditable" (it does not do the task, and no bias is shown);
    * otherwise the policy of ``gate.bound`` decides. ``noise_floor`` is reported, not used: the width of
      the interval already says whether the items can decide.
    """
    spec = gate_spec(metric)
    direction, what = spec.direction, spec.label
    est, lo, hi = _clean(estimate), _clean(ci[0]), _clean(ci[1])
    policy = policy_of(gate.bound, direction)
    common = dict(
        id=f"{metric}[{model}-{condition}]", model=model, condition=condition, metric=metric, estimate=est,
        ci=(lo, hi), bound=gate.bound, bound_value=None, threshold=gate.threshold, direction=direction,
        rationale=gate.rationale, label=spec.label, meaning=spec.meaning, inconclusive_fails=inconclusive_fails,
    )
    interval = f"estimate {_fmt(est)} [{_fmt(lo)}, {_fmt(hi)}] at {confidence:.0%}, threshold {gate.threshold:g}"
    if noise_floor is not None and not math.isnan(noise_floor):
        interval += f", noise floor {noise_floor:.3f}"
    if n_answered < min_items:
        reason = f"only {n_answered} answered items (< min_items = {min_items}): the sample is too small to decide"
        return GateOutcome(**common, status="inconclusive", message=f"{what} under '{condition}' for {model}: inconclusive: {reason}",
                           warning=reason, reason=reason)
    if precondition is not None and not precondition[0]:
        return GateOutcome(**common, status="pass", message=f"{what}: not applicable, {precondition[1]}")
    if est is None or (policy != "point" and (lo is None or hi is None)):
        return GateOutcome(**common, status="skipped", message=f"{what} could not be measured under '{condition}' (no usable items)")
    lo_v, hi_v = (lo, hi) if lo is not None and hi is not None else (est, est)
    status, why = decide(est, lo_v, hi_v, gate.threshold, direction, policy)
    nearest = hi_v if direction == "max" else lo_v
    beyond_end = lo_v if direction == "max" else hi_v
    common["bound_value"] = est if policy == "point" else beyond_end if status == "fail" else nearest
    shown_beyond = lo_v > gate.threshold if direction == "max" else hi_v < gate.threshold
    if not shown_beyond and direction == "max" and accuracy is not None and accuracy_floor is not None \
            and not accuracy >= accuracy_floor:
        reason = (f"not auditable: accuracy {accuracy:.3f} is below the floor {accuracy_floor:g} (the model does not do "
                  "the task) and no bias is shown beyond the limit")
        return GateOutcome(**common, status="inconclusive", reason=reason,
                           message=f"{what} under '{condition}' for {model}: inconclusive: {reason} ({interval})")
    message = f"{what} under '{condition}' for {model}: {status}: {why} ({interval})"
    return GateOutcome(**common, status=status, message=message, reason=why if status == "inconclusive" else None)
