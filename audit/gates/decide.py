"""The one place that decides a gate's outcome: the bound against the threshold (``evaluate.py``), a
skip, the multiplicity correction (over the conditions a gate covers, or over every gate and condition of
the verdict), and a waiver. The run measures and hands the measurement here; the pytest plugin hands a
waiver here; neither sets a status.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

from audit.gates.evaluate import GateOutcome, evaluate_gate
from audit.gates.registry import Measurement, gate_spec
from audit.stats.multiplicity import beyond_p_from_interval, holm, two_step

VERDICT_CORRECTIONS = ("holm_verdict", "two_step_verdict")  # over every gate and condition of the verdict
NOT_MEASURED = Measurement(math.nan, (math.nan, math.nan))
Family = Callable[[], Sequence[tuple[str, str, Measurement]]]  # (gate, condition, measurement) of each decision


def decide(gate: str, config, *, model: str, condition: str, measured: Measurement | None, skip: str | None,
           n_answered: int, holm_measurements: Callable[[], Sequence[tuple[str, Measurement]]] | None = None,
           verdict_measurements: Family | None = None) -> GateOutcome:
    """The outcome of ``gate`` for a model and condition from its measurement (or ``skip``, why it could
    not apply). Asked only when the gate fails by its interval: ``holm_measurements``, the gate's measurement
    in each condition it covers (``correction = "holm"``); ``verdict_measurements``, every gate's in every
    condition of the verdict (``correction = "holm_verdict"`` or ``"two_step_verdict"``)."""
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
    if outcome.status != "fail" or not _shown_beyond(outcome) or config.correction == "none":
        return outcome
    over_verdict = config.correction in VERDICT_CORRECTIONS and not gate_spec(gate).conditional
    if over_verdict and verdict_measurements is not None:
        family = list(verdict_measurements())
        correct = _two_step if config.correction == "two_step_verdict" else _holm
        correct(outcome, family, config, scope=f"{len(family)} gate-condition decisions of the verdict")
    elif holm_measurements is not None:  # "holm"; and a conditional gate (transfer) under a verdict-wide correction
        family = [(gate, c, m) for c, m in holm_measurements()]
        _holm(outcome, family, config, scope=f"{len(family)} conditions")
    return outcome


def _shown_beyond(outcome: GateOutcome) -> bool:
    """The outcome's interval lies wholly beyond its limit (a fail Holm's correction may withdraw)."""
    lo, hi = outcome.ci
    if outcome.direction == "max":
        return lo is not None and lo > outcome.threshold
    return hi is not None and hi < outcome.threshold


def beyond_p(gate: str, m: Measurement, config) -> float:
    """One-sided p of H0 "the effect is within the limit" for one decision: exact where the measure gives
    one, else read off its interval; 1 when it cannot be read (a decision that cannot fail)."""
    threshold, direction = config.gates[gate].threshold, gate_spec(gate).direction
    p = m.p_beyond if m.p_beyond is not None else beyond_p_from_interval(m.estimate, *m.ci, threshold, direction,
                                                                        config.confidence)
    return 1.0 if p != p else p


def _holm(outcome: GateOutcome, family: Sequence[tuple[str, str, Measurement]], config, *, scope: str) -> None:
    """A failing gate must also reject H0 "the effect is within the limit" after Holm's correction over
    ``family`` (each decision's one-sided p, ``beyond_p``); else it is inconclusive. Holm's step-down is valid
    under any dependence, so the chance that any decision of the family wrongly fails a model within every
    limit stays at the one-sided level (1 - confidence) / 2."""
    p_values = {(g, c): beyond_p(g, m, config) for g, c, m in family}
    key = (outcome.metric, outcome.condition)
    if key not in p_values:
        return
    adjusted = dict(zip(p_values, holm(list(p_values.values()))))[key]
    alpha = (1 - config.confidence) / 2  # the one-sided error a fail of the two-sided interval carries
    if adjusted > alpha:
        outcome.status = "inconclusive"
        outcome.reason = (f"not shown beyond the limit after Holm's correction over {scope} "
                          f"(adjusted p = {adjusted:.3g} > {alpha:g} for H0: effect within {outcome.threshold:g})")
        outcome.message += f"; inconclusive: {outcome.reason}"


def _two_step(outcome: GateOutcome, family: Sequence[tuple[str, str, Measurement]], config, *, scope: str) -> None:
    """A failing gate must also be shown beyond its limit by the two-step test over ``family``
    (``audit.stats.multiplicity.two_step``: Holm's step-down, except that decisions shown far within their
    limits barely count), family-wise at the one-sided level (1 - confidence) / 2 under any dependence; else
    it is inconclusive."""
    keys = [(g, c) for g, c, _ in family]
    key = (outcome.metric, outcome.condition)
    if key not in keys:
        return
    alpha = (1 - config.confidence) / 2
    test = two_step([beyond_p(g, m, config) for g, c, m in family], alpha)
    i = keys.index(key)
    if not test.rejected[i]:
        outcome.status = "inconclusive"
        outcome.reason = (f"not shown beyond the limit by the two-step test over {scope} (z = {test.z[i]:.2f} <= "
                          f"{test.critical:.2f}, the critical value with {test.discounted} decisions shown far within "
                          f"their limits discounted; family-wise {alpha:g} for H0: effect within {outcome.threshold:g})")
        outcome.message += f"; inconclusive: {outcome.reason}"


def waive(outcome: GateOutcome, reason: str | None, *, skipped: bool) -> None:
    """An expected failure (``pytest.mark.xfail`` on the audit test): a gate that failed as expected is
    waived with the reason; one that passed keeps its status and records the reason."""
    if skipped:
        outcome.status = "waived"
    outcome.waiver_reason = reason or "expected failure"
