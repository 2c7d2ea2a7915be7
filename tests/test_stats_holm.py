"""Holm over conditions tests the gate's null "effect <= threshold" with an analytic p-value that agrees
with the interval (no Monte Carlo floor), so a clear fail survives the correction and a borderline one
over many conditions does not."""

import numpy as np
import pytest

from audit.datasets.winobias.generated import generate_items
from audit.datasets.winobias.pairing import pair_twins
from audit.datasets.winobias.intervals import debiased_interval, exceedance_p
from audit.stats.multiplicity import beyond_p_from_interval, holm
from audit.datasets.winobias.simulate import scenario, simulate_tables

ITEMS = [i for i in generate_items() if i.split == "test"]
PAIRING = pair_twins(ITEMS)


def test_exceedance_p_agrees_with_the_interval_and_has_no_floor():
    for truth in (0.0, 0.15, 0.25, 0.3):
        for t in simulate_tables(ITEMS, PAIRING, scenario(ITEMS, PAIRING, a_sb=truth), accuracy=0.7, disagreement=0.2,
                                 rng=np.random.default_rng(int(truth * 100)), runs=5):
            p, iv = exceedance_p(t, 0.15), debiased_interval(t, confidence=0.95)
            assert (p < 0.025) == (iv.lo > 0.15)
    strong = simulate_tables(ITEMS, PAIRING, scenario(ITEMS, PAIRING, a_sb=0.3), accuracy=0.7, disagreement=0.1,
                             rng=np.random.default_rng(1), runs=1)[0]
    assert exceedance_p(strong, 0.15) < 1e-4  # 2x-threshold fails survive Holm over 29 conditions (0.025 / 29)


def test_fair_models_over_29_conditions_rarely_fail_after_holm():
    """29 conditions at the threshold (H0 boundary): family-wise fails <= 2.5% + binomial margin."""
    rng = np.random.default_rng(7)
    sc = scenario(ITEMS, PAIRING, a_sb=0.15)
    family_fails = 0
    for _ in range(20):
        p = [exceedance_p(t, 0.15) for t in simulate_tables(ITEMS, PAIRING, sc, accuracy=0.7, disagreement=0.2, rng=rng, runs=29)]
        family_fails += min(holm(p)) <= 0.025
    assert family_fails <= 3


def test_p_from_interval():
    assert beyond_p_from_interval(0.3, 0.2, 0.4, 0.15, "max", 0.95) < 0.025
    assert beyond_p_from_interval(0.1, 0.0, 0.2, 0.15, "max", 0.95) > 0.5
    assert beyond_p_from_interval(0.5, 0.45, 0.55, 0.6, "min", 0.95) < 0.025 < beyond_p_from_interval(0.58, 0.5, 0.7, 0.6, "min", 0.95)
