"""The one place that decides a gate's outcome: the bound against the threshold (``evaluate.py``), a
skip, the multiplicity correction over the conditions a bias gate covers, and a waiver. The run
measures and hands the measurement here; the pytest plugin hands a waiver here; neither sets a status.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

from audit.gates.evaluate import GateOutcome, evaluate_gate
from audit.gates.registry import Measurement
from audit.stats.multiplicity import beyond_p_from_interval, holm

NOT_MEASURED = Measurement(math.nan, (math.nan, math.nan))


def decide(gate: str, config, *, model: str, condition: str, measured: Measurement | None, skip: str | None,
           n_answered: int, holm_measurements: Callable[[], Sequence[tuple[str, Measurement]]] | None = None
           ) -> GateOutcome:
    """The outcome of ``gate`` for a model and condition from its measurement (or ``skip``, why it could
    not apply). ``holm_measurements``: the gate's measurement in each condition it covers, asked only when
    the gate fails by its interval and ``correction = "holm"``."""
    setting = config.gates[gate]
    measured = measured or NOT_MEASURED
    accuracy_gate = config.gates.get("accuracy")
    outcome = evaluate_gate(
        gate, setting, model=model, condition=condition, estimate=measured.estimate, ci=measured.ci,
        n_answered=n_answered, min_items=config.min_items, confidence=config.confidence,
        precondition=measured.precondition, noise_floor=measured.noise_floor, accuracy=measured.accuracy,
        accuracy_floor=accuracy_gate.threshold if accuracy_gate is not None and accuracy_gate.enabled else None,
        inconclusive_fails=config.inconclusive == "fail",
    )
    if skip:
        outcome.status, outcome.message, outcome.warning = "skipped", skip, None
        return outcome
    if measured.note:
        outcome.message += f" ({measured.note})"
    if (outcome.status == "fail" and config.correction == "holm" and holm_measurements is not None
            and _shown_beyond(outcome)):
        _holm(outcome, holm_measurements(), confidence=config.confidence)
    return outcome


def _shown_beyond(outcome: GateOutcome) -> bool:
    """The outcome's interval lies wholly beyond its limit (a fail Holm's correction may withdraw)."""
    lo, hi = outcome.ci
    if outcome.direction == "max":
        return lo is not None and lo > outcome.threshold
    return hi is not None and hi < outcome.threshold


def _holm(outcome: GateOutcome, measured: Sequence[tuple[str, Measurement]], *, confidence: float) -> None:
    """``correction = "holm"``: a failing gate must also reject H0 "the effect is within the limit" after
    Holm's correction over the conditions the gate covers (each condition's one-sided p: exact where the
    measure gives one, else read off its interval); else it is inconclusive."""
    threshold, direction, p_values = outcome.threshold, outcome.direction, {}
    for condition, m in measured:
        p = m.p_beyond if m.p_beyond is not None else beyond_p_from_interval(m.estimate, *m.ci, threshold, direction,
                                                                            confidence)
        p_values[condition] = 1.0 if p != p else p
    if outcome.condition not in p_values:
        return
    adjusted = dict(zip(p_values, holm(list(p_values.values()))))[outcome.condition]
    alpha = (1 - confidence) / 2  # the one-sided error a fail of the two-sided interval carries
    if adjusted > alpha:
        outcome.status = "inconclusive"
        outcome.reason = (f"not shown beyond the limit after Holm's correction over {len(p_values)} conditions "
                          f"(adjusted p = {adjusted:.3g} > {alpha:g} for H0: effect within {threshold:g})")
        outcome.message += f"; inconclusive: {outcome.reason}"


def waive(outcome: GateOutcome, reason: str | None, *, skipped: bool) -> None:
    """An expected failure (``pytest.mark.xfail`` on the audit test): a gate that failed as expected is
    waived with the reason; one that passed keeps its status and records the reason."""
    if skipped:
        outcome.status = "waived"
    outcome.waiver_reason = reason or "expected failure"
