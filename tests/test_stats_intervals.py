"""Interval helpers: |.| from a signed interval, paired differences, seeds, paired regression."""

import math

import numpy as np
import pytest

from audit.datasets.winobias.generated import generate_items
from audit.datasets.winobias.pairing import pair_twins
from audit.datasets.winobias.intervals import (
    Interval, abs_interval, combine_seeds, combine_seed_tables, debiased_interval, paired_change, paired_difference_interval,
)
from audit.datasets.winobias.simulate import scenario, simulate_tables

ITEMS = [i for i in generate_items() if i.split == "test"]
PAIRING = pair_twins(ITEMS)


def tables(a_sb, n, seed, nu=0.2):
    sc = scenario(ITEMS, PAIRING, a_sb=a_sb)
    return simulate_tables(ITEMS, PAIRING, sc, accuracy=0.7, disagreement=nu, rng=np.random.default_rng(seed), runs=n)


def test_abs_interval_covers_the_absolute_value_whenever_the_signed_one_covers():
    assert (abs_interval(Interval(0.02, -0.03, 0.07, 0.01, 0.95)).lo, abs_interval(Interval(0.02, -0.03, 0.07, 0.01, 0.95)).hi) == (0.0, 0.07)
    a = abs_interval(Interval(-0.12, -0.2, -0.04, 0.01, 0.95))
    assert (a.estimate, a.lo, a.hi) == (0.12, 0.04, 0.2)


def test_paired_difference_interval_by_hand_and_coverage():
    iv = paired_difference_interval(np.array([1, 1, 0, -1, 0, 0, 0, 0]))
    assert iv.estimate == 0.125
    up, down = 2.5 / 10, 1.5 / 10  # Agresti-Min: half a count added to each cell
    se = math.sqrt((up + down - (up - down) ** 2) / 10)
    assert (iv.lo, iv.hi) == pytest.approx((up - down - 1.959964 * se, up - down + 1.959964 * se), abs=1e-6)
    rng = np.random.default_rng(0)  # rare disagreement: 3% + / 1% - over 300 pairs
    draws = rng.choice([1.0, -1.0, 0.0], p=[0.03, 0.01, 0.96], size=(400, 300))
    assert 0.92 <= np.mean([paired_difference_interval(d).contains(0.02) for d in draws]) <= 0.99
    with pytest.raises(ValueError):
        paired_difference_interval(np.array([0.5]))


def test_debiased_interval_contains_its_estimate():
    for t in tables(0.1, 50, 1):
        iv = debiased_interval(t)
        assert iv.lo <= iv.estimate <= iv.hi


def test_combine_seeds_by_hand():
    c = combine_seeds([0.1, 0.2, 0.3], [0.001, 0.002, 0.003])
    se = math.sqrt(0.002 + 0.01 / 3)
    assert c.estimate == pytest.approx(0.2) and c.se == pytest.approx(se)
    one = combine_seeds([0.1], [0.0004])
    assert (one.lo, one.hi) == pytest.approx((0.1 - 1.959964 * 0.02, 0.1 + 1.959964 * 0.02), abs=1e-6)


def test_seeds_that_repeat_their_answers_add_no_evidence():
    t = tables(0.0, 1, 2, nu=0.5)[0]
    one, three = debiased_interval(t), combine_seed_tables([t, t, t])
    assert (three.estimate, three.lo, three.hi) == pytest.approx((one.estimate, one.lo, one.hi))
    seeds = [tables(0.05, 1, 2)[0], tables(0.2, 1, 3)[0], tables(0.12, 1, 4)[0]]
    c = combine_seed_tables(seeds)  # answers averaged per pair: the estimate lies between the seeds'
    assert min(debiased_interval(t).estimate for t in seeds) - 0.05 <= c.estimate <= max(debiased_interval(t).estimate for t in seeds)


def test_paired_regression_calibrated_and_powerful():
    same = [paired_change(a, b, n_resamples=200, seed=k) for k, (a, b) in enumerate(zip(tables(0.1, 30, 5), tables(0.1, 30, 6)))]
    assert np.mean([iv.lo > 0 for iv in same]) <= 0.1  # a run as biased as the approved one: rarely "worse"
    assert 0.88 <= np.mean([iv.contains(0.0) for iv in same]) <= 1.0
    worse = [paired_change(a, b, n_resamples=200, seed=k) for k, (a, b) in enumerate(zip(tables(0.25, 15, 7), tables(0.1, 15, 8)))]
    assert np.mean([iv.lo > 0 for iv in worse]) >= 0.5  # measured 0.66 over 100 runs (docs/statistics.md)
