"""Error rates of the BBQ gates, by seeded simulation with known truth (``audit.datasets.bbq.simulate``):
a fair chooser fails bbq_s_amb / bbq_s_dis in at most 5% of runs, one at 1.5x the threshold in at least
90%, and the worst-category interval covers the true worst |s| in 90-99% of runs (each with a binomial
margin of about two standard errors). Also: the design correction gives an accurate, stereotype-free
model exactly 0 on the unbalanced official split, and ``max_items`` spreads over categories."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from audit.datasets.bbq import metrics
from audit.datasets.bbq.dataset import BBQ
from audit.datasets.bbq.intervals import design_stratum, set_key
from audit.datasets.bbq.simulate import Chooser, planted_at, replicate, simulate, truth
from audit.datasets.bbq.worst import abs_bounds, worst_category
from shared_data import bbq_dir

needs_bbq = pytest.mark.skipif(bbq_dir() is None, reason="official BBQ files not found (../shared/bbq)")
BOOT = {"confidence": 0.95, "n_resamples": 200, "seed": 0}


def margin(p: float, runs: int) -> float:
    return 2.2 * math.sqrt(p * (1 - p) / runs)


def test_abs_bounds():
    assert abs_bounds(0.1, 0.3) == (0.1, 0.3)
    assert abs_bounds(-0.3, -0.1) == (0.1, 0.3)
    assert abs_bounds(-0.2, 0.05) == (0.0, 0.2)


def test_worst_category_interval_covers_at_its_level():
    """Six categories of true score 0 (and, second, one at 0.15): the max-T interval of the worst |s| holds
    the truth in about 95% of runs (at least that when one category stands out), where the percentile
    interval of the maximum never holds 0."""
    rng = np.random.default_rng(3)
    se = np.array([0.01, 0.02, 0.03, 0.05, 0.05, 0.08])
    names = [f"c{i}" for i in range(6)]
    for true in (np.zeros(6), np.array([0.15, 0, 0, 0, 0, 0])):
        runs, covered, maximum_covered = 600, 0, 0
        for _ in range(runs):
            point = true + rng.normal(0, se)
            boot = point + rng.normal(0, se, size=(400, 6))
            w = worst_category(names, point, boot, 0.95)
            covered += w.lower <= np.abs(true).max() <= w.upper
            lo, hi = np.quantile(np.abs(boot).max(axis=1), [0.025, 0.975])
            maximum_covered += lo <= np.abs(true).max() <= hi
        if not true.any():  # every category at 0: the family-wise level is attained
            assert 0.92 <= covered / runs <= 0.985, covered / runs
            assert maximum_covered / runs < 0.05
        else:  # one category stands out: conservative (noisier categories can set the upper end)
            assert covered / runs >= 0.92, covered / runs


def test_worst_category_upper_end_needs_no_simultaneity():
    """The upper end comes from each category's own interval (intersection-union): with one category at the
    limit's 1.5x and five at 0 it still falls below the true worst |s| in at most about 2.5% of runs, and a
    fair model's upper end is lower than the simultaneous one (so it is shown within the limit more often)."""
    rng = np.random.default_rng(4)
    se = np.full(6, 0.04)
    names = [f"c{i}" for i in range(6)]
    true = np.array([0.15, 0, 0, 0, 0, 0])
    runs, below, narrower = 800, 0, 0
    for _ in range(runs):
        point = true + rng.normal(0, se)
        boot = point + rng.normal(0, se, size=(400, 6))
        w = worst_category(names, point, boot, 0.95)
        below += w.upper < 0.15
        simultaneous_upper = max(abs_bounds(lo, hi)[1] for lo, hi in w.intervals.values())
        narrower += w.upper < simultaneous_upper
    assert below / runs <= 0.025 + margin(0.025, runs), below / runs
    assert narrower == runs


def test_two_step_lower_end_keeps_its_error_and_gains_where_categories_differ():
    """The fail side's lower end (two-step, Romano-Shaikh-Wolf): with every category at the limit (the least
    favourable case) or one at it and five at 0, it is above the limit in at most about 2.5% of runs; with one
    category at 1.5x the limit and five at 0 it fails far more often than the single-step max-T end, on the
    same draws; with every category at 1.5x as often (within 0.03)."""
    rng = np.random.default_rng(8)
    se = np.array([0.0114, 0.0167, 0.012, 0.0169, 0.0201, 0.0218])  # the bbq preset's s_AMB, low noise
    names = [f"c{i}" for i in range(6)]
    cases = {"all at the limit": np.full(6, 0.1), "one at the limit": np.r_[0, 0, 0, 0, 0, 0.1],
             "one at 1.5x": np.r_[0, 0, 0, 0, 0, 0.15], "all at 1.5x": np.full(6, 0.15)}
    runs, rates = 250, {}
    for case, true in cases.items():
        new = old = 0
        for _ in range(runs):
            point = true + rng.normal(0, se)
            w = worst_category(names, point, point + rng.normal(0, se, size=(400, 6)), 0.95)
            new += w.lower > 0.1
            old += max(abs_bounds(lo, hi)[0] for lo, hi in w.intervals.values()) > 0.1
            assert w.lower <= w.estimate
        rates[case] = (new / runs, old / runs)
    for case in ("all at the limit", "one at the limit"):
        assert rates[case][0] <= 0.025 + margin(0.025, runs), (case, rates)
    assert rates["one at 1.5x"][0] >= rates["one at 1.5x"][1] + 0.08, rates  # about 0.57 against 0.37
    assert rates["all at 1.5x"][0] >= rates["all at 1.5x"][1] - 0.03, rates


@needs_bbq
def test_accurate_stereotype_free_model_scores_exactly_zero():
    """The official test split is not counterbalanced: unweighted (upstream R), a model that always answers
    correctly has s_DIS of about +0.11 on Physical_appearance; design-weighted, 0 in every category, and
    the gates' intervals hold 0."""
    items = BBQ().load(str(bbq_dir() / "data"), split="test", seed=0)
    perfect = [it.label for it in items]
    appearance = [it for it in items if it.category == "Physical_appearance"]
    assert metrics.s_dis(appearance, [it.label for it in appearance]) > 0.05
    summary = BBQ().summarize(items, perfect, BOOT)
    assert len(summary["categories"]) == 6
    for name, entry in summary["categories"].items():
        assert abs(entry["s_dis"]) < 1e-9 and abs(entry["s_amb"]) < 1e-9, name
        assert entry["accuracy_disambig"] == pytest.approx(1.0)
    for metric in ("s_amb", "s_dis"):
        assert summary["worst"][metric]["ci"][0] == 0.0 and summary["worst"][metric]["ci"][1] < 1e-9


@needs_bbq
def test_max_items_is_balanced_over_categories_and_counterbalanced():
    items = BBQ().load(f"{bbq_dir() / 'data'}#Age,Religion,Physical_appearance", split="test", seed=0)
    for n in (200, 1200):
        sample = BBQ().subsample(items, n, seed=0)
        per_category = Counter(it.category for it in sample)
        assert len(per_category) == 3 and max(per_category.values()) - min(per_category.values()) <= 8, per_category
        sets: dict = {}
        for it in sample:
            sets.setdefault(set_key(it), []).append(it)
        flags = Counter((key[0], design_stratum(v)[1]) for key, v in sets.items())
        for category in per_category:
            assert flags[(category, True)] == flags[(category, False)], flags


@pytest.fixture(scope="module")
def split_items():
    return BBQ().load(f"{bbq_dir() / 'data'}#Age,Religion", split="test", seed=0)


@needs_bbq
def test_fair_chooser_is_fair_and_rarely_fails(split_items):
    """A fair chooser (85% right when the context says, 75% "unknown" when it does not, errors on either
    person alike) on the test split of Age and Religion: true worst |s| is 0; each gate fails <= 5% of runs."""
    chooser = Chooser()
    true = truth(split_items, chooser.probabilities(split_items))
    assert all(abs(v) < 1e-9 for scores in true.values() for v in scores.values())
    runs = 120
    rates = simulate(split_items, chooser, runs=runs, seed=11)
    for gate, r in rates.items():
        assert r["fail"] <= 0.05 + margin(0.05, runs), (gate, r)
        assert 0.90 - margin(0.90, runs) <= r["covered"] <= 1.0, (gate, r)
        assert r["pass"] >= 0.5, (gate, r)  # the split is large enough to show a fair model within 0.10


@needs_bbq
@pytest.mark.parametrize("metric", ["s_amb", "s_dis"])
def test_bias_at_one_and_a_half_times_the_threshold_fails(split_items, metric):
    """Stereotype use planted in Age so that its true |s| is 0.15 (1.5 x 0.10): the gate fails in >= 90% of
    runs and its interval covers the truth in 90-99%. Power needs about 1,400 example sets in the category
    (the test split's 837 give 70-85%, docs/calibration-bbq.md), so the split's sets are taken twice, as
    independent copies."""
    items = replicate(split_items, 2)
    chooser = planted_at(items, metric, "Age", 0.15)
    runs = 100
    r = simulate(items, chooser, runs=runs, seed=5)[f"bbq_{metric}"]
    assert r["truth"] == pytest.approx(0.15, abs=1e-6)
    assert r["fail"] >= 0.90 - margin(0.90, runs), r
    assert r["pass"] == 0.0, r
    assert 0.90 - margin(0.90, runs) <= r["covered"] <= 0.99 + margin(0.99, runs), r


@needs_bbq
def test_fair_reference_model_is_not_shown_biased_through_the_session():
    """End to end through AuditSession (as `bias-audit run`): the fair planted-rule model on a balanced
    subsample of three categories; neither BBQ gate's interval lies beyond its limit (so neither can fail,
    and the transfer gate's precondition, a failing bare bbq_s_amb, does not hold), and the note names the
    worst category."""
    from audit import AuditSession, load_config

    overrides = {"data": f"bbq:{bbq_dir() / 'data'}#Age,Religion,Physical_appearance", "max_items": 900,
                 "n_resamples": 300, "min_items": 50}
    session = AuditSession(config=load_config(preset="bbq", overrides=overrides), model_specs=["reference-bbq:fair"],
                           use_cache=False)
    session.prepare()
    for condition in ("intrinsic", "zero_shot"):
        summary = session.summary("reference-bbq:fair", condition)
        for gate, metric in (("bbq_s_amb", "s_amb"), ("bbq_s_dis", "s_dis")):
            outcome = session.gate(gate, "reference-bbq:fair", condition)
            assert outcome.ci[0] <= session.config.gates[gate].threshold, outcome.message
            assert outcome.ci[0] <= outcome.estimate <= outcome.ci[1]
            assert "worst category" in outcome.message
            simultaneous = summary["worst"][metric]["simultaneous"]
            assert set(simultaneous) == {"Age", "Religion", "Physical_appearance"}


@needs_bbq
def test_debiasing_change_is_noise_free_and_design_weighted():
    """The debiasing gate's BBQ estimand (theta^2 of the design-weighted per-template selection bias): exactly 0
    for any model without stereotype use whatever its accuracy, the planted value squared when every category
    uses stereotypes at it; a strategy that only adds random errors (accuracy 0.95/0.90 -> 0.75/0.60) is not
    shown to increase it (the mean |O-SB| over templates rose in every run), and the interval holds the true 0."""
    from audit.datasets.bbq.debiasing import theta2_change, true_theta2
    from audit.datasets.bbq.simulator import BBQSimulator

    items = BBQ().load(f"{bbq_dir() / 'data'}#Age,Religion,Physical_appearance", split="test", seed=0)
    sim = BBQSimulator(items, plant="every")
    low, high = sim.fair("low"), sim.fair("high")
    assert true_theta2(items, low.probs) == pytest.approx(0, abs=1e-12)
    assert true_theta2(items, high.probs) == pytest.approx(0, abs=1e-12)
    assert true_theta2(items, sim.planted("bbq_s_amb", 0.15, "low").probs) == pytest.approx(0.15**2, abs=1e-6)
    rng = np.random.default_rng(5)
    runs, shown_up, covered, a_sb_rose = 12, 0, 0, 0
    for r in range(runs):
        before, after = (items, low.answer(rng)), (items, high.answer(rng))
        change, (lo, hi), _, _ = theta2_change(before, after, n_resamples=200, seed=r)
        shown_up += lo > 0
        covered += lo <= 0 <= hi
        a_sb_rose += BBQ().paired_change(before, after, BOOT)["overall"]["a_sb"]["change"] > 0
    assert shown_up <= 1 and covered >= runs - 2, (shown_up, covered)
    assert a_sb_rose >= runs - 1, a_sb_rose  # what the gate read before: noise alone raised it
