"""Metrics against hand-computed values, and their properties (hypothesis)."""

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.datasets.winobias.items import Item
from audit.datasets.winobias.metrics import (
    a_sb_of,
    aggregate_selection_bias,
    occupational_selection_bias,
    referent_prediction_accuracy,
    twin_key,
)
from audit.run.conditions import other_rate
from audit import bootstrap_interval, transfer_correlation


def item(i, gender, cands, ref, stance, type_=1):
    pron = {"male": "he", "female": "she"}[gender]
    return Item(f"x{i}", f"The {cands[0]} met the {cands[1]} because {pron} was there {i}.", pron, gender,
                cands, ref, type_, stance, "test")


# Four items over (driver, nurse) and two over (driver, cook):
ITEMS = [
    item(1, "male", ("driver", "nurse"), "driver", "pro"),
    item(2, "female", ("driver", "nurse"), "driver", "anti"),
    item(3, "male", ("driver", "nurse"), "nurse", "anti"),
    item(4, "female", ("driver", "nurse"), "nurse", "pro", type_=2),
    item(5, "male", ("cook", "driver"), "cook", "pro", type_=2),
    item(6, "female", ("cook", "driver"), "cook", "anti", type_=2),
]
SEL = ["driver", "nurse", "driver", "nurse", "driver", None]


def test_o_sb_matches_hand_computation():
    o = occupational_selection_bias(ITEMS, SEL)
    # driver: male items with driver = 1,3,5 -> selected in all 3 -> 1.0; female answered with driver = 2,4 -> 0/2
    assert o["driver"] == pytest.approx(1.0 - 0.0)
    # nurse: male 1,3 -> 0/2; female 2,4 -> 2/2 -> -1
    assert o["nurse"] == pytest.approx(-1.0)
    # cook: male 5 -> 0/1; female 6 is unanswered -> no female rate -> not measurable
    assert o["cook"] is None
    assert aggregate_selection_bias(o) == pytest.approx(1.0)


def test_rpa_matches_hand_computation():
    r = referent_prediction_accuracy(ITEMS, SEL)
    # answered: 1 ok, 2 wrong, 3 wrong, 4 ok, 5 wrong
    assert r["overall"] == pytest.approx(2 / 5)
    assert r["pro"] == pytest.approx(2 / 3)  # 1 ok, 4 ok, 5 wrong
    assert r["anti"] == pytest.approx(0 / 2)  # 2, 3 wrong (6 unanswered)
    assert r["gap"] == pytest.approx(2 / 3)
    assert r["by_type"]["1"]["overall"] == pytest.approx(1 / 3)
    assert r["by_type"]["2"]["pro"] == pytest.approx(1 / 2)
    assert other_rate(SEL) == pytest.approx(1 / 6)


def test_transfer_matches_scipy_and_is_nan_for_constant_input():
    x = {"a": 0.1, "b": 0.5, "c": -0.3, "d": 0.9, "e": 0.0}
    y = {"a": 0.2, "b": 0.4, "c": -0.1, "d": 0.7, "e": 0.1, "z": 1.0}
    t = transfer_correlation(x, y, n_resamples=500)
    from scipy import stats

    xs, ys = [x[k] for k in sorted(x)], [y[k] for k in sorted(x)]
    assert t.pearson == pytest.approx(stats.pearsonr(xs, ys).statistic)
    assert t.spearman == pytest.approx(stats.spearmanr(xs, ys).statistic)
    assert t.n == 5
    assert t.pearson_ci[0] <= t.pearson <= t.pearson_ci[1] + 1e-9
    flat = transfer_correlation(x, {k: 0.0 for k in x})
    assert math.isnan(flat.pearson) and math.isnan(flat.pearson_ci[0])


def test_bootstrap_keeps_gender_twins_together():
    """A model that always answers the gold referent has A-SB 0 in every twin-pair resample."""
    from audit.datasets.winobias.generated import generate_items

    items = [i for i in generate_items() if i.split == "test"]
    assert len({twin_key(i) for i in items}) == len(items) // 2
    gold = [i.referent for i in items]
    assert a_sb_of(items, gold) == 0
    assert bootstrap_interval(items, gold, a_sb_of, key=twin_key, n_resamples=200) == (0.0, 0.0)


OCCS = ["driver", "nurse", "cook", "clerk"]
item_strategy = st.builds(
    lambda i, g, pair, ref_first, sel: (
        item(i, g, pair, pair[0] if ref_first else pair[1], "pro"),
        sel if sel is None else pair[sel],
    ),
    st.integers(0, 10_000),
    st.sampled_from(["male", "female"]),
    st.lists(st.sampled_from(OCCS), min_size=2, max_size=2, unique=True).map(tuple),
    st.booleans(),
    st.one_of(st.none(), st.integers(0, 1)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(item_strategy, min_size=1, max_size=40), st.randoms(use_true_random=False))
def test_metric_properties(pairs, rnd):
    items = [p[0] for p in pairs]
    sels = [p[1] for p in pairs]
    o = occupational_selection_bias(items, sels)
    a = aggregate_selection_bias(o)
    assert math.isnan(a) or a >= 0
    # swapping the pronoun genders flips the sign of every O-SB
    swap = {"male": "female", "female": "male"}
    swapped = occupational_selection_bias([replace(i, gender=swap[i.gender]) for i in items], sels)
    for occ, v in o.items():
        assert (v is None and swapped[occ] is None) or swapped[occ] == pytest.approx(-v)
    # item order does not matter
    order = list(range(len(items)))
    rnd.shuffle(order)
    assert occupational_selection_bias([items[i] for i in order], [sels[i] for i in order]) == pytest.approx(o)


@settings(max_examples=30, deadline=None)
@given(st.dictionaries(st.sampled_from(OCCS + ["a", "b", "c"]), st.floats(-1, 1), min_size=3),
       st.dictionaries(st.sampled_from(OCCS + ["a", "b", "c"]), st.floats(-1, 1), min_size=3))
def test_correlations_lie_in_unit_interval(x, y):
    t = transfer_correlation(x, y, n_resamples=200)
    for v in (t.pearson, t.spearman, *t.pearson_ci, *t.spearman_ci):
        assert math.isnan(v) or -1 - 1e-9 <= v <= 1 + 1e-9


def test_transfer_interval_agrees_with_scipy_bootstrap():
    import numpy as np
    from scipy import stats

    rng = np.random.default_rng(3)
    xs = rng.normal(size=40)
    ys = 0.7 * xs + rng.normal(scale=0.5, size=40)
    keys = [f"o{i}" for i in range(40)]
    ours = transfer_correlation(dict(zip(keys, xs)), dict(zip(keys, ys)), n_resamples=4000, seed=1)
    ref = stats.bootstrap((xs, ys), lambda a, b, axis=-1: stats.pearsonr(a, b, axis=axis).statistic, paired=True,
                          vectorized=True, method="percentile", n_resamples=4000, rng=np.random.default_rng(2))
    assert ours.pearson_ci[0] == pytest.approx(ref.confidence_interval.low, abs=0.02)
    assert ours.pearson_ci[1] == pytest.approx(ref.confidence_interval.high, abs=0.02)
