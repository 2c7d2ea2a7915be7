"""Calibration of the gated statistics on both item designs, by simulation with a known gender effect.

Graded per-occupation effects with true A-SB 0, 0.10, 0.15, 0.20 and twin disagreement 5% and 40%
(``audit.datasets.winobias.simulate``), 200 seeded runs per cell. The gates use the verdict rule of
``audit.datasets.winobias.verdicts.gate_verdict`` with ``bound="point"`` on the debiased statistic (a_sb: the
root-mean-square O-SB theta, threshold 0.15; rpa_gap: |pro - anti|, threshold 0.10). The measured
figures are in docs/statistics.md (``python benchmarks/stats_calibration.py`` reprints them).
"""

import numpy as np
import pytest

from audit.datasets.winobias.generated import generate_items
from audit.datasets.winobias.metrics import a_sb_of, twin_key
from audit import bootstrap_interval
from audit.datasets.winobias.official import load_winobias_dir
from audit.datasets.winobias.pairing import pair_twins
from audit.datasets.winobias.intervals import debiased_interval, worst_o_sb_bound
from audit.datasets.winobias.selection import a_sb, debiased_effect, noise_floor, o_sb, pair_table
from audit.datasets.winobias.simulate import calibration_cell, gender_blind_selections, scenario, simulate_tables
from audit.datasets.winobias.transfer_eiv import transfer_eiv
from shared_data import winobias_dir

RUNS = 200
TRUTHS = (0.0, 0.10, 0.15, 0.20)
DISAGREEMENT = (0.05, 0.40)


def generated():
    return [i for i in generate_items() if i.split == "test"]


def official():
    path = winobias_dir()
    if path is None:
        pytest.skip("official WinoBias files not found")
    return [i for i in load_winobias_dir(path) if i.split == "test"]


DESIGNS = {"generated": generated, "winobias": official}


@pytest.fixture(scope="module", params=list(DESIGNS))
def design(request):
    items = DESIGNS[request.param]()
    return request.param, items, pair_twins(items)


CELLS = [(k, truth, nu) for k, truth in enumerate(TRUTHS) for nu in DISAGREEMENT]


@pytest.mark.parametrize("k, truth, nu", CELLS)
def test_a_sb_statistic_is_unbiased_and_covers(design, k, truth, nu):
    name, items, pairing = design
    r = calibration_cell(items, pairing, "a_sb", truth, disagreement=nu, runs=RUNS, seed=k)
    where = f"{name} true A-SB {truth} disagreement {nu}: {r}"
    assert 0.90 <= r.coverage <= 0.99, where
    assert abs(r.bias_squared) <= 0.002, where  # theta^2 is estimated without bias
    # On the root scale: within 0.01 where the items can decide (noise floor <= threshold / 2); on the
    # small generated split at high disagreement the root of a noisy theta^2 is pulled down a little.
    assert abs(r.bias) <= (0.01 if r.noise_floor <= 0.075 else 0.03), where
    if truth == 0:
        assert r.fail <= 0.05, where


@pytest.mark.parametrize("k, truth, nu", CELLS)
def test_rpa_gap_statistic_is_unbiased_and_covers(design, k, truth, nu):
    name, items, pairing = design
    r = calibration_cell(items, pairing, "rpa_gap", truth, disagreement=nu, runs=RUNS, seed=10 + k)
    where = f"{name} true gap {truth} disagreement {nu}: {r}"
    assert 0.90 <= r.coverage <= 0.99, where
    assert abs(r.bias) <= 0.01, where
    if truth == 0:
        assert r.fail <= 0.05, where


@pytest.mark.parametrize("nu", DISAGREEMENT)
def test_gates_fail_a_model_at_one_and_a_half_times_the_threshold(design, nu):
    name, items, pairing = design
    a = calibration_cell(items, pairing, "a_sb", 0.225, disagreement=nu, runs=RUNS, seed=20)
    g = calibration_cell(items, pairing, "rpa_gap", 0.15, disagreement=nu, runs=RUNS, seed=21)
    # The interval rule fails only a bias it shows (measured at 40% disagreement: official a_sb 0.76,
    # rpa_gap 0.455;
    # generated a_sb 0.50, rpa_gap 0.25); the rest is inconclusive, never a pass.
    floor = 0.40 if name == "winobias" else 0.20
    for r in (a, g):
        assert r.fail >= floor and r.fail + r.inconclusive >= 0.97, f"{name}: {r}"


def test_gender_blind_model_is_exactly_zero_and_has_no_transfer(design):
    name, items, pairing = design
    minimal = [k for p in pairing.usable(include_non_minimal=False) for k in (p.male, p.female)]
    its = [items[k] for k in minimal]
    sel = gender_blind_selections(its, pair_twins(its), accuracy=0.7, rng=np.random.default_rng(0))
    t = pair_table(its, sel)
    iv = debiased_interval(t)
    assert set(o_sb(t).values()) == {0.0}
    assert a_sb(t) == 0 and noise_floor(t) == 0 and debiased_effect(t).theta2 == 0
    assert iv.lo <= iv.estimate <= iv.hi and iv.estimate == 0
    assert a_sb_of(its, sel) == 0  # the paper's A-SB on the minimal pairs
    tr = transfer_eiv(t, t)
    assert not tr.defined and "no bias to transfer" in tr.reason and np.isnan(tr.rho)
    # The old percentile bootstrap of A-SB excluded its own estimate on the full official split (issue 12).
    if name == "winobias":
        full = gender_blind_selections(items, pairing, accuracy=0.7, rng=np.random.default_rng(0))
        lo, hi = bootstrap_interval(items, full, a_sb_of, key=twin_key, n_resamples=200)
        assert not lo <= a_sb_of(items, full) <= hi
        new = debiased_interval(pair_table(items, full, pairing))
        assert new.contains(new.estimate)


def test_worst_o_sb_bound_covers_every_occupation_at_once(design):
    name, items, pairing = design
    sc = scenario(items, pairing, a_sb=0.15)
    covered = 0
    tables = simulate_tables(items, pairing, sc, accuracy=0.7, disagreement=0.2, rng=np.random.default_rng(5), runs=40)
    for t in tables:
        wb = worst_o_sb_bound(t, n_resamples=300, seed=1)
        covered += all(lo - 1e-12 <= sc.true_o_sb[o] <= hi + 1e-12 for o, (lo, hi) in wb.intervals.items())
        assert wb.lower <= wb.estimate <= wb.upper
    assert covered / len(tables) >= 0.88, f"{name}: simultaneous coverage {covered / len(tables)}"


def test_worst_o_sb_p_beyond_agrees_with_its_bound_and_reads_far_within_as_one(design):
    """p of H0 "every |O-SB| <= t" (single-step max-T): below 1 - confidence exactly where ``lower`` > t; a fair model
    far within 0.5 reads p = 1 (what the verdict-wide two-step correction discounts), not the 0.8 a normal reading
    of the interval gave."""
    name, items, pairing = design
    for a_sb, disagreement in ((0.0, 0.4), (0.4, 0.05)):
        sc = scenario(items, pairing, a_sb=a_sb)
        for t in simulate_tables(items, pairing, sc, accuracy=0.7, disagreement=disagreement, rng=np.random.default_rng(9), runs=6):
            wb = worst_o_sb_bound(t, n_resamples=300, seed=1)
            for threshold in (0.05, 0.2, 0.5):
                p = wb.p_beyond(threshold)
                assert 0 < p <= 1
                assert (p < 0.05) == (wb.lower > threshold) or abs(p - 0.05) < 0.01, (name, a_sb, threshold, p, wb.lower)
            if a_sb == 0.0:
                assert wb.p_beyond(0.5) == 1.0
    from audit.datasets.winobias.intervals import WorstBound

    by_hand = WorstBound(0.9, 1.0, 0.8, 3.0, {}, np.array([0.9, 0.1]), np.array([0.05, 0.05]), np.linspace(0.5, 3.5, 300))
    assert by_hand.p_beyond(0.01) < 1e-60  # 17.8 se beyond, past every resample: the union bound, no Monte Carlo floor
    assert by_hand.p_beyond(0.9 - 0.05 * 2.0) == pytest.approx((1 + 150) / 301, abs=0.01)  # 2 se: half the resamples reach it
