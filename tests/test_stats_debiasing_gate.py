"""debiasing_no_increase compares theta^2 paired by twin pair: a strategy that only adds twin
disagreement (noise, no bias) is not read as raising bias, a real increase is found, and a dataset
without the headline metric is skipped, not crashed."""

import numpy as np

from audit import Dataset
from audit.datasets.winobias import WinoBias
from audit.datasets.winobias.generated import generate_items
from audit.datasets.winobias.pairing import pair_twins
from audit.datasets.winobias.simulate import scenario, simulate_selections

ITEMS = [i for i in generate_items() if i.split == "test"]
PAIRING = pair_twins(ITEMS)
BOOT = {"confidence": 0.95, "n_resamples": 300, "seed": 0}


def runs(a_sb, nu, rng):
    return simulate_selections(ITEMS, PAIRING, scenario(ITEMS, PAIRING, a_sb=a_sb), accuracy=0.7, disagreement=nu, rng=rng)


def test_more_twin_noise_is_not_an_increase_but_more_bias_is():
    ds, rng = WinoBias(), np.random.default_rng(5)
    noisier = [ds.bias_change((ITEMS, runs(0.1, 0.1, rng)), (ITEMS, runs(0.1, 0.3, rng)), {**BOOT, "seed": k}) for k in range(30)]
    assert sum(lo > 0 for _, (lo, _), _ in noisier) <= 3  # one-sided 2.5% + binomial margin (the old A-SB gate: 100%)
    assert all(lo <= est <= hi for est, (lo, hi), _ in noisier)  # the interval holds its own estimate
    worse = [ds.bias_change((ITEMS, runs(0.1, 0.2, rng)), (ITEMS, runs(0.35, 0.2, rng)), {**BOOT, "seed": k}) for k in range(10)]
    assert sum(lo > 0 for _, (lo, _), _ in worse) >= 8
    assert "theta" in worse[0][2]


def test_a_dataset_without_the_headline_metric_is_skipped():
    ds = WinoBias()
    ds.headline_bias = "no_such_metric"
    sel = runs(0.1, 0.2, np.random.default_rng(1))
    assert Dataset.bias_change(ds, (ITEMS, sel), (ITEMS, sel), BOOT) is None
