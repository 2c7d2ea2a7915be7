"""Paired estimands against hand-computed values, brute-force enumeration and the existing metrics."""

import itertools
import math

import numpy as np
import pytest

from audit.datasets.winobias.generated import generate_items
from audit.datasets.winobias.metrics import occupational_selection_bias
from audit.datasets.winobias.occupations import lookup_occupation
from audit.datasets.winobias.pairing import pair_twins
from audit.stats.normalization import normalize_loglikelihood
from audit.datasets.winobias.selection import (
    PairTable, a_sb, debiased_effect, expected_abs_rademacher_sum, noise_floor, o_sb,
    pair_table, score_pair_table, swap_test,
)


def table(a, b, x, k=None):
    k = k or max(max(a), max(b)) + 1
    return PairTable(tuple(f"o{i}" for i in range(k)), np.array(a), np.array(b), np.array(x, float),
                     tuple(f"p{i}" for i in range(len(x))), np.zeros(len(x)))


# o0 appears in pairs 0-3, o1 in 0-1 and 4, o2 in 2-4
SMALL = table([0, 1, 0, 2, 1], [1, 0, 2, 0, 2], [1, 1, -1, 0, 1])


def test_o_sb_and_a_sb_by_hand():
    # d(o0) = [1, -1, -1, 0]; d(o1) = [-1, 1, 1]; d(o2) = [1, 0, -1]
    assert o_sb(SMALL) == {"o0": -0.25, "o1": pytest.approx(1 / 3), "o2": 0.0}
    assert a_sb(SMALL) == pytest.approx((0.25 + 1 / 3 + 0) / 3)


def test_paired_o_sb_equals_the_papers_formula_when_every_item_is_answered():
    items = [i for i in generate_items() if i.split == "test"]
    rng = np.random.default_rng(0)
    sel = [rng.choice(i.candidates) for i in items]
    ours = o_sb(pair_table(items, sel))
    paper = occupational_selection_bias(items, sel)
    assert ours.keys() == paper.keys()
    assert all(ours[o] == pytest.approx(paper[o], abs=1e-12) for o in ours)


@pytest.mark.parametrize("k", range(0, 13))
def test_expected_abs_rademacher_sum_matches_enumeration(k):
    brute = np.mean([abs(sum(s)) for s in itertools.product((-1, 1), repeat=k)]) if k else 0.0
    assert expected_abs_rademacher_sum(k) == pytest.approx(brute, abs=1e-12)


def all_flips(t: PairTable):
    for signs in itertools.product((-1.0, 1.0), repeat=t.n_pairs):
        yield PairTable(t.occupations, t.a, t.b, t.x * np.array(signs), t.pair_ids, t.gap)


def test_noise_floor_is_the_exact_swap_expectation():
    assert noise_floor(SMALL) == pytest.approx(np.mean([a_sb(f) for f in all_flips(SMALL)]), abs=1e-12)
    rng = np.random.default_rng(1)
    t = table(list(rng.integers(0, 4, 10)), list((rng.integers(1, 4, 10))), list(rng.integers(-1, 2, 10)), k=4)
    t = PairTable(t.occupations, t.a, (t.a + t.b) % 4, t.x, t.pair_ids, t.gap)  # a != b
    assert noise_floor(t) == pytest.approx(np.mean([a_sb(f) for f in all_flips(t)]), abs=1e-12)
    cont = PairTable(t.occupations, t.a, t.b, rng.normal(size=10), t.pair_ids, t.gap)  # score measure
    assert noise_floor(cont) == pytest.approx(np.mean([a_sb(f) for f in all_flips(cont)]), abs=1e-12)


def expected_theta2(a, b, probs):
    values = (1.0, 0.0, -1.0)
    expected = 0.0
    for outcome in itertools.product(range(3), repeat=len(a)):
        weight = math.prod(probs[j][c] for j, c in enumerate(outcome))
        expected += weight * debiased_effect(table(a, b, [values[c] for c in outcome])).theta2
    return expected


def test_debiased_effect_is_exactly_unbiased_by_enumeration():
    """Each pair's x has known probabilities; E[theta2-hat] over all 3^N outcomes is theta^2 exactly when an
    occupation's pairs share one mean (pairs drawn from a population), and otherwise the mean over
    occupations of (sum_{i != k} mu_i mu_k) / (n (n - 1)), below theta^2 by the pairs' spread / (n - 1)."""
    same = [(0.5, 0.3, 0.2)] * 3 + [(0.1, 0.6, 0.3)] * 3  # P(x = 1, 0, -1); o0-o1 lean 0.3, o2-o3 lean -0.2
    assert expected_theta2([0, 0, 0, 2, 2, 2], [1, 1, 1, 3, 3, 3], same) == pytest.approx((0.3**2 + 0.2**2) / 2, abs=1e-12)
    a, b = [0, 0, 1, 0, 1], [1, 2, 2, 1, 2]
    mixed = [(0.5, 0.3, 0.2), (0.1, 0.6, 0.3), (0.2, 0.2, 0.6), (0.4, 0.4, 0.2), (0.3, 0.3, 0.4)]
    mu = [p[0] - p[2] for p in mixed]
    terms = []
    for o in range(3):
        d = [mu[j] if a[j] == o else -mu[j] for j in range(5) if o in (a[j], b[j])]
        terms.append((sum(d) ** 2 - sum(v * v for v in d)) / (len(d) * (len(d) - 1)))
    assert expected_theta2(a, b, mixed) == pytest.approx(np.mean(terms), abs=1e-12)


def test_swap_test():
    items = [i for i in generate_items() if i.split == "test"]
    blind = pair_table(items, [i.referent for i in items])
    assert swap_test(blind).p_a_sb == 1.0 and swap_test(blind).p_max == 1.0
    stereotyped = [next(c for c in i.candidates if lookup_occupation(c).stereotype == i.gender) for i in items]
    st = swap_test(pair_table(items, stereotyped), n_resamples=500, seed=3)
    assert st.p_a_sb == pytest.approx(1 / 501) and st.p_max == pytest.approx(1 / 501)
    assert max(st.p_occupation.values()) < 0.05  # every occupation leans, family-wise significant


def test_score_measure_cancels_candidate_length_and_frequency_exactly():
    items = [i for i in generate_items() if i.split == "test"]
    rng = np.random.default_rng(2)
    scores = [tuple(rng.normal(size=2)) for _ in items]
    offset = {o: rng.normal(scale=5) for i in items for o in i.candidates}  # a candidate's own prior/length
    shifted = [(s[0] + offset[i.candidates[0]], s[1] + offset[i.candidates[1]]) for s, i in zip(scores, items)]
    p = pair_twins(items)
    assert np.allclose(score_pair_table(items, scores, p).x, score_pair_table(items, shifted, p).x, atol=1e-12)
    # sign: candidate a scored 1 higher with "he" than with "she" -> +1 for a
    bump = [(1.0, 0.0) if i.gender == "male" else (0.0, 0.0) for i in items]
    t = score_pair_table(items, bump, p)
    assert set(t.x) == {1.0}
    assert debiased_effect(score_pair_table(items, [(0.0, 0.0)] * len(items), p)).theta2 == 0


def test_normalize_loglikelihood():
    assert normalize_loglikelihood(-6.0, " nurse", 2, "none") == -6.0
    assert normalize_loglikelihood(-6.0, " nurse", 2, "token") == -3.0
    assert normalize_loglikelihood(-6.0, " nurse", 2, "char") == -1.0  # lm-eval acc_norm: len(" nurse") = 6
    with pytest.raises(ValueError, match="'none', 'token' or 'char'"):
        normalize_loglikelihood(-1.0, "x", 1, "bytes")  # type: ignore[arg-type]
