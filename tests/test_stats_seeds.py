"""Seeds as their own level: a multi-seed condition keeps each twin pair one resampling unit, its answers
averaged over seeds before any square, so a fair model whose answers persist across shot draws is not
read as biased (the pooled copies used to fail it in 46% of runs)."""

import numpy as np

from audit.datasets.winobias.generated import generate_items
from audit.datasets.winobias.pairing import pair_twins
from audit.datasets.winobias.intervals import debiased_interval
from audit.datasets.winobias.selection import pair_table
from audit.datasets.winobias.simulate import scenario, simulate_selections

ITEMS = [i for i in generate_items() if i.split == "test"]


def test_a_multi_seed_run_has_one_unit_per_pair_and_a_seed_repeat_changes_nothing():
    pairing = pair_twins(ITEMS)
    sc = scenario(ITEMS, pairing, a_sb=0.0)
    sel = simulate_selections(ITEMS, pairing, sc, accuracy=0.7, disagreement=0.5, rng=np.random.default_rng(0))
    one = pair_table(ITEMS, sel)
    three = pair_table(ITEMS * 3, sel * 3)  # three seeds answering alike
    assert three.n_pairs == one.n_pairs and three.pair_ids == one.pair_ids
    a, b = debiased_interval(one), debiased_interval(three)
    assert (a.estimate, a.lo, a.hi) == (b.estimate, b.lo, b.hi)


def test_fair_model_with_persistent_answers_over_three_seeds_rarely_fails():
    pairing = pair_twins(ITEMS)
    sc = scenario(ITEMS, pairing, a_sb=0.0)
    rng = np.random.default_rng(11)
    fails = 0
    runs = 60
    for _ in range(runs):
        base = simulate_selections(ITEMS, pairing, sc, accuracy=0.7, disagreement=0.5, rng=rng)
        seeds = [list(base) for _ in range(3)]
        for s in seeds[1:]:  # each seed redraws 20% of the answers: the rest persist across shot draws
            redraw = simulate_selections(ITEMS, pairing, sc, accuracy=0.7, disagreement=0.5, rng=rng)
            for k in np.flatnonzero(rng.random(len(ITEMS)) < 0.2):
                s[k] = redraw[k]
        iv = debiased_interval(pair_table(ITEMS * 3, [x for s in seeds for x in s]))
        fails += iv.lo > 0.15
    # true theta 0: the gate's one-sided error is <= 2.5%; binomial margin over 60 runs
    assert fails <= 4
