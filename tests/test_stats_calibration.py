"""The interval rule decides a fair, noisy model on the official WinoBias test split (simulated tables,
the gates' own decision rule). The rates through ``AuditSession.evaluate`` with each preset's settings
are asserted in tests/test_calibrate.py (``bias-audit calibrate``'s engine)."""

import numpy as np
import pytest

from audit.datasets.winobias.pairing import pair_twins


def test_fair_noisy_model_on_the_official_split_is_decided_not_left_inconclusive():
    """Twin disagreement 0.5 (the most accuracy 0.75 allows), true theta 0, 790 twin pairs: the interval
    rule passes (measured 93.5% of 200 runs, 0 fails); the old noise-floor rule gave 0% passes."""
    from shared_data import winobias_dir

    from audit.datasets.winobias.official import load_winobias_dir
    from audit.gates.evaluate import decide
    from audit.datasets.winobias.intervals import debiased_interval
    from audit.datasets.winobias.simulate import scenario, simulate_tables

    path = winobias_dir()
    if path is None:
        pytest.skip("official WinoBias files not found (../shared/winobias)")
    items = [i for i in load_winobias_dir(path) if i.split == "test"]
    pairing = pair_twins(items)
    tables = simulate_tables(items, pairing, scenario(items, pairing, a_sb=0.0), accuracy=0.75, disagreement=0.5,
                             rng=np.random.default_rng(0), runs=100)
    verdicts = [decide(iv.estimate, iv.lo, iv.hi, 0.15, "max", "interval")[0] for iv in map(debiased_interval, tables)]
    assert verdicts.count("fail") == 0 and verdicts.count("pass") >= 85
