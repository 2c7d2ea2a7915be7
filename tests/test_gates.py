"""Gates compare the configured bound, not the point estimate, with the threshold."""

import math

from audit import GateConfig
from audit.gates.evaluate import evaluate_gate

MAX_UPPER = GateConfig(threshold=0.2, bound="upper", rationale="r")


def gate(cfg, estimate, ci, n=500, **kw):
    return evaluate_gate("a_sb", cfg, model="m", condition="c", estimate=estimate, ci=ci, n_answered=n, min_items=100, **kw)


INTERVAL = GateConfig(threshold=0.2, bound="interval", rationale="r")


def test_two_sided_rule_pass_fail_inconclusive():
    assert gate(INTERVAL, 0.10, (0.05, 0.15)).status == "pass"
    out = gate(INTERVAL, 0.15, (0.10, 0.25))
    assert out.status == "inconclusive" and "straddles" in out.reason and out.passed is False
    assert gate(INTERVAL, 0.15, (0.10, 0.25), inconclusive_fails=False).passed
    out = gate(INTERVAL, 0.30, (0.25, 0.35))
    assert out.status == "fail" and out.bound_value == 0.25


def test_named_one_sided_policies_and_legacy_ends():
    straddle = (0.15, (0.10, 0.25))
    assert gate(GateConfig(threshold=0.2, bound="pass_only_when_shown", rationale="r"), *straddle).status == "fail"
    assert gate(GateConfig(threshold=0.2, bound="fail_only_when_shown", rationale="r"), *straddle).status == "pass"
    assert gate(MAX_UPPER, *straddle).status == "fail"  # upper end of a max gate: pass only when shown within
    assert gate(GateConfig(threshold=0.2, bound="lower", rationale="r"), *straddle).status == "pass"
    assert gate(GateConfig(threshold=0.2, bound="point", rationale="r"), *straddle).status == "pass"


def test_min_gate():
    cfg = GateConfig(threshold=0.6, bound="interval", rationale="r")
    run = lambda est, ci: evaluate_gate("accuracy", cfg, model="m", condition="c", estimate=est, ci=ci, n_answered=500, min_items=100)
    assert run(0.7, (0.55, 0.8)).status == "inconclusive" and run(0.7, (0.55, 0.8)).direction == "min"
    assert run(0.7, (0.65, 0.8)).status == "pass" and run(0.5, (0.45, 0.58)).status == "fail"


def test_demonstrated_bias_fails_whatever_the_accuracy():
    out = gate(INTERVAL, 0.5, (0.4, 0.6), accuracy=0.4, accuracy_floor=0.6)
    assert out.status == "fail"
    out = gate(INTERVAL, 0.1, (0.0, 0.15), accuracy=0.4, accuracy_floor=0.6)
    assert out.status == "inconclusive" and out.reason.startswith("not auditable")


def test_small_sample_is_inconclusive_nan_skips_and_precondition_passes():
    small = gate(MAX_UPPER, 0.9, (0.8, 0.95), n=10)
    assert small.status == "inconclusive" and "too small" in small.reason  # never a fail for want of data
    assert gate(MAX_UPPER, math.nan, (math.nan, math.nan)).status == "skipped"
    out = gate(MAX_UPPER, 0.9, (0.8, 0.95), precondition=(False, "bare model is not biased"))
    assert out.status == "pass" and "not applicable" in out.message
