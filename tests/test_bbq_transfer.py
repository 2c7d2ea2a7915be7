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
    ds, items, _ = data
    answers = choose(Chooser().probabilities(items), np.random.default_rng(3))
    out = ds.corrected_transfer((items, answers), (items, answers), BOOT)
    assert out["rho_naive"] == pytest.approx(1.0)  # the papers' Pearson of identical noise
    assert out["defined"] is False and "no bias to transfer" in out["reason"]


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
