"""The one place that decides a gate's outcome: the bound against the threshold (``evaluate.py``), a
skip, the multiplicity correction over the conditions a bias gate covers, and a waiver. The run
measures and hands the measurement here; the pytest plugin hands a waiver here; neither sets a status.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

from audit.gates.evaluate import GateOutcome, evaluate_gate
from audit.gates.registry import Measurement
from audit.stats.multiplicity import holm

NOT_MEASURED = Measurement(math.nan, (math.nan, math.nan))


def decide(gate: str, config, *, model: str, condition: str, measured: Measurement | None, skip: str | None,
           n_answered: int, holm_p_values: Callable[[], tuple[Sequence[str], Sequence[float | None]]] | None = None
           ) -> GateOutcome:
    """The outcome of ``gate`` for a model and condition from its measurement (or ``skip``, why it could
    not apply). ``holm_p_values``: for a dataset's bias gate under ``correction = "holm"``, the conditions
    the gate covers and their swap-test p-values, asked only when the gate fails."""
    setting = config.gates[gate]
    measured = measured or NOT_MEASURED
    accuracy_gate = config.gates.get("accuracy")
    outcome = evaluate_gate(
        gate, setting, model=model, condition=condition, estimate=measured.estimate, ci=measured.ci,
        n_answered=n_answered, min_items=config.min_items, confidence=config.confidence,
        precondition=measured.precondition, noise_floor=measured.noise_floor, noise_ratio=config.noise_ratio,
        accuracy=measured.accuracy,
        accuracy_floor=accuracy_gate.threshold if accuracy_gate is not None and accuracy_gate.enabled else None,
        inconclusive_fails=config.inconclusive == "fail",
    )
    if skip:
        outcome.status, outcome.message, outcome.warning = "skipped", skip, None
        return outcome
    if measured.note:
        outcome.message += f" ({measured.note})"
    if outcome.status == "fail" and config.correction == "holm" and holm_p_values is not None:
        _holm(outcome, *holm_p_values(), alpha=1 - config.confidence)
    return outcome


def _holm(outcome: GateOutcome, names: Sequence[str], p_values: Sequence[float | None], *, alpha: float) -> None:
    """A failing bias gate must also be significant (swap test) after Holm's correction over the
    conditions the gate covers; else it is inconclusive."""
    if any(p is None for p in p_values):
        return
    adjusted = dict(zip(names, holm(list(p_values))))[outcome.condition]
    if adjusted > alpha:
        outcome.status = "inconclusive"
        outcome.reason = (f"not significant after Holm's correction over {len(names)} conditions "
                          f"(adjusted swap-test p = {adjusted:.3f} > {alpha:g})")
        outcome.message += f"; inconclusive: {outcome.reason}"


def waive(outcome: GateOutcome, reason: str | None, *, skipped: bool) -> None:
    """An expected failure (``pytest.mark.xfail`` on the audit test): a gate that failed as expected is
    waived with the reason; one that passed keeps its status and records the reason."""
    if skipped:
        outcome.status = "waived"
    outcome.waiver_reason = reason or "expected failure"
