"""Family-wise error: Holm, max-T and the verdict's error statement."""

import numpy as np
import pytest

from audit.datasets.winobias.generated import generate_items
from audit.datasets.winobias.pairing import pair_twins
from audit.datasets.winobias.selection import swap_max_t
from audit.stats.multiplicity import family_wise_error, holm, max_t
from audit.datasets.winobias.simulate import scenario, simulate_tables


def test_holm_by_hand():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([]) == [] and holm([0.9, 0.3]) == pytest.approx([0.9, 0.6])


def test_max_t_single_condition_is_the_plain_permutation_p_value():
    draws = np.arange(99.0)
    assert max_t({"a": 95.0}, {"a": draws}) == {"a": pytest.approx((1 + 4) / 100)}
    two = max_t({"a": 95.0, "b": 10.0}, {"a": draws, "b": draws[::-1]})
    # max over the two conditions of draw i is max(i, 98 - i): >= 95 for 8 draws, >= 10 for all 99
    assert two["a"] == pytest.approx((1 + 8) / 100) and two["b"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        max_t({"a": 1.0, "b": 1.0}, {"a": [1.0], "b": [1.0, 2.0]})


def test_family_wise_error_statement():
    f = family_wise_error(130, 0.05)
    assert f.independent == pytest.approx(1 - 0.95**130) and f.bound == 1.0 and f.per_gate_for_family == pytest.approx(0.05 / 130)
    assert "130 gates" in f.statement() and "99.9%" in f.statement()


def test_swap_max_t_keeps_the_family_wise_error_for_fair_models():
    items = [i for i in generate_items() if i.split == "test"]
    pairing = pair_twins(items)
    sc = scenario(items, pairing, a_sb=0.0)
    rng = np.random.default_rng(0)
    rejected = 0
    for run in range(25):
        conditions = {f"c{k}": t for k, t in enumerate(simulate_tables(items, pairing, sc, accuracy=0.7, disagreement=0.3, rng=rng, runs=4))}
        rejected += min(swap_max_t(conditions, n_resamples=200, seed=run).values()) <= 0.05
    assert rejected / 25 <= 0.12  # nominal 5%; 25 runs
    biased = simulate_tables(items, pairing, scenario(items, pairing, a_sb=0.2), accuracy=0.7, disagreement=0.3, rng=rng, runs=1)[0]
    fair = simulate_tables(items, pairing, sc, accuracy=0.7, disagreement=0.3, rng=rng, runs=2)
    p = swap_max_t({"biased": biased, "fair1": fair[0], "fair2": fair[1]}, n_resamples=300)
    assert p["biased"] <= 0.05
