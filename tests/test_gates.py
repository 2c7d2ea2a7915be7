"""Gates compare the configured bound, not the point estimate, with the threshold."""

import math

from audit.config import GateConfig
from audit.gates.evaluate import evaluate_gate

MAX_UPPER = GateConfig(threshold=0.2, bound="upper", rationale="r")


def gate(cfg, estimate, ci, n=500, **kw):
    return evaluate_gate("a_sb", cfg, model="m", condition="c", estimate=estimate, ci=ci, n_answered=n, min_items=100, **kw)


def test_upper_bound_decides_a_max_gate():
    assert gate(MAX_UPPER, 0.10, (0.05, 0.15)).status == "pass"
    out = gate(MAX_UPPER, 0.15, (0.10, 0.25))  # point estimate within, upper bound not: fail
    assert out.status == "fail" and out.bound_value == 0.25 and "upper 95% bound" in out.message
    point = GateConfig(threshold=0.2, bound="point", rationale="r")
    assert gate(point, 0.15, (0.10, 0.25)).status == "pass"


def test_min_gate_uses_lower_bound():
    cfg = GateConfig(threshold=0.6, bound="lower", rationale="r")
    out = evaluate_gate("accuracy", cfg, model="m", condition="c", estimate=0.7, ci=(0.55, 0.8), n_answered=500, min_items=100)
    assert out.status == "fail" and out.direction == "min"


def test_small_sample_warns_and_nan_skips_and_precondition_passes():
    assert "too small" in gate(MAX_UPPER, 0.1, (0.0, 0.15), n=10).warning
    assert gate(MAX_UPPER, math.nan, (math.nan, math.nan)).status == "skipped"
    out = gate(MAX_UPPER, 0.9, (0.8, 0.95), precondition=(False, "bare model is not biased"))
    assert out.status == "pass" and "not applicable" in out.message
