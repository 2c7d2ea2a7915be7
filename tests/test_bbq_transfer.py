"""BBQ's transfer corrected for the noise both conditions share (audit.datasets.bbq.transfer): a model
answering alike in every condition no longer reads rho = 1.000 [1.000, 1.000] from its noise."""

from __future__ import annotations

import numpy as np
import pytest

from audit.datasets.bbq.dataset import BBQ
from audit.datasets.bbq.simulate import Chooser, choose
from tests.shared_data import bbq_dir

pytestmark = pytest.mark.skipif(bbq_dir() is None, reason="official BBQ files not found (../shared/bbq or $BIAS_AUDIT_BBQ_DIR)")
BOOT = {"confidence": 0.95, "n_resamples": 300, "seed": 0}


@pytest.fixture(scope="module")
def data():
    ds = BBQ()
    items = ds.load(str(bbq_dir()), split="test", seed=0)
    return ds, items, sorted({it.category for it in items})


def test_a_fair_model_answering_alike_everywhere_has_no_transfer(data):
    """Identical answers in both conditions: the papers' Pearson reads 1 from the shared noise. The corrected
    rho of identical noise is 1 too (a ratio of equal estimates), so what protects the record is the test that
    the bare bias is shown at all (level 0.05): over 20 fair models, at most 3 (binomial 1% margin) define it."""
    from scipy import stats

    ds, items, _ = data
    probs, rng, defined = Chooser().probabilities(items), np.random.default_rng(3), 0
    for _ in range(20):
        answers = choose(probs, rng)
        out = ds.corrected_transfer((items, answers), (items, answers), BOOT)
        assert out["rho_naive"] == pytest.approx(1.0)  # the papers' Pearson of identical noise
        defined += out["defined"]
        assert out["defined"] or "no bias to transfer" in out["reason"]
    assert defined <= stats.binom.ppf(0.99, 20, 0.05), defined


def test_an_accurate_model_without_stereotype_use_has_zero_true_bias_in_every_template(data):
    from audit.datasets.bbq.transfer import design_weighted_bias

    ds, items, _ = data
    for chooser in (Chooser(), Chooser(acc_dis=0.7, acc_amb=0.5)):
        probs = chooser.probabilities(items)
        truth = design_weighted_bias(items, [p[it.stereotyped_index] if it.stereotyped_index is not None else 0.0
                                             for it, p in zip(items, probs)])
        assert len(truth) >= 100 and max(abs(v) for v in truth.values()) < 1e-12


def test_the_same_bias_in_both_conditions_is_transfer_and_another_bias_is_not(data):
    ds, items, cats = data
    rng = np.random.default_rng(4)
    biased = Chooser(stereotype=((cats[0], 0.4), (cats[1], 0.2), (cats[2], 0.1))).probabilities(items)
    other = Chooser(stereotype=((cats[3], 0.4), (cats[4], 0.2), (cats[5], 0.1))).probabilities(items)
    same = ds.corrected_transfer((items, choose(biased, rng)), (items, choose(biased, rng)), BOOT)
    assert same["defined"] and same["rho_ci"][0] > 0.5 and same["rho_ci"][1] >= 0.99, same  # true rho 1
    assert same["rho"] > same["rho_naive"]  # the naive Pearson is attenuated by the item noise
    moved = ds.corrected_transfer((items, choose(biased, rng)), (items, choose(other, rng)), BOOT)
    assert moved["defined"] and moved["rho_ci"][1] < 0.5, moved  # the bias moved to other categories: no transfer
