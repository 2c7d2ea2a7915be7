"""Transfer with errors in variables: attenuation corrected, retained share recovered, undefined without bias."""

import math

import numpy as np
import pytest

from audit.datasets.winobias.generated import generate_items
from audit.datasets.winobias.pairing import pair_twins
from audit.datasets.winobias.selection import PairTable
from audit.datasets.winobias.simulate import scenario, simulate_tables
from audit.datasets.winobias.transfer_eiv import transfer_eiv, transfer_over_seeds

ITEMS = generate_items()  # both splits: 640 twin pairs
PAIRING = pair_twins(ITEMS)


def runs(a_sb, n, seed):
    sc = scenario(ITEMS, PAIRING, a_sb=a_sb)
    return simulate_tables(ITEMS, PAIRING, sc, accuracy=0.7, disagreement=0.2, rng=np.random.default_rng(seed), runs=n)


def test_perfect_transfer_of_half_the_bias_is_recovered():
    """Prompted O-SB = half the intrinsic profile (true rho 1, retained share 0.5), independent noise."""
    results = [transfer_eiv(i, p, n_resamples=200, seed=k) for k, (i, p) in enumerate(zip(runs(0.2, 20, 1), runs(0.1, 20, 2)))]
    assert all(r.defined for r in results)
    naive = np.mean([r.rho_naive for r in results])
    corrected = np.mean([r.rho for r in results])
    retained = [r.retained for r in results]
    assert naive < 0.75 and corrected > naive + 0.2 and corrected > 0.85  # attenuation undone
    assert abs(np.mean(retained) - 0.5) < 0.06
    # The retained-share interval covers 0.85 of these 20 runs (0.65 when the bootstrap resampled the observed
    # pairs as they were, a world more reliable than the data); the test guards against it getting worse.
    assert np.mean([r.retained_ci[0] <= 0.5 <= r.retained_ci[1] for r in results]) >= 0.75
    assert np.mean([r.rho_ci[0] <= 1 <= r.rho_ci[1] + 1e-9 for r in results]) >= 0.8
    assert set(results[0].by_group) == {"male", "female"} and results[0].by_group["male"]["n_occupations"] == 20


def test_no_transfer_when_prompting_removes_the_bias():
    intrinsic = runs(0.2, 1, 3)[0]
    flat = PairTable(intrinsic.occupations, intrinsic.a, intrinsic.b, np.zeros(intrinsic.n_pairs), intrinsic.pair_ids, intrinsic.gap)
    r = transfer_eiv(intrinsic, flat, n_resamples=200)
    assert r.defined and r.retained == 0 and math.isnan(r.rho) and "rho undefined" in r.reason


def test_transfer_is_undefined_without_intrinsic_bias():
    blind = runs(0.0, 1, 4)[0]
    zero = PairTable(blind.occupations, blind.a, blind.b, np.zeros(blind.n_pairs), blind.pair_ids, blind.gap)
    r = transfer_eiv(zero, runs(0.2, 1, 5)[0], n_resamples=200)
    assert not r.defined and "every intrinsic O-SB is exactly 0" in r.reason and math.isnan(r.rho)
    prompted = runs(0.2, 1, 6)[0]
    fair = [transfer_eiv(t, prompted, n_resamples=300, seed=k) for k, t in enumerate(runs(0.0, 20, 9))]  # noise only
    undefined = [r for r in fair if not r.defined]
    assert len(undefined) >= 17 and all("not significant" in r.reason for r in undefined)  # swap test at 5%
    assert all(math.isnan(r.rho) and math.isnan(r.retained) for r in undefined)


def test_seeds_are_their_own_level():
    intrinsic = runs(0.2, 1, 7)[0]
    out = transfer_over_seeds(intrinsic, runs(0.1, 3, 8), n_resamples=200)
    assert out["defined"] and len(out["per_seed"]) == 3
    per_seed = [r.retained for r in out["per_seed"]]
    assert out["retained"].estimate == pytest.approx(np.mean(per_seed))
    widest = max(r.retained_ci[1] - r.retained_ci[0] for r in out["per_seed"])
    assert out["retained"].hi - out["retained"].lo >= 0.9 * min(r.retained_ci[1] - r.retained_ci[0] for r in out["per_seed"])
    assert out["retained"].hi - out["retained"].lo <= 2 * widest


def test_gender_blind_model_claims_no_transfer_and_the_gate_reads_the_corrected_rho():
    """A model giving both twins the same answer: no correlation is claimed (the dataset's corrected
    transfer is undefined, with the reason), whatever the naive Pearson of its unpaired rounding noise."""
    from audit.datasets.winobias import WinoBias
    from audit.datasets.winobias.simulate import gender_blind_selections

    ds = WinoBias()
    rng = np.random.default_rng(3)
    blind = gender_blind_selections(ITEMS, PAIRING, accuracy=0.8, rng=rng)
    prompted = gender_blind_selections(ITEMS, PAIRING, accuracy=0.8, rng=rng)
    boot = {"confidence": 0.95, "n_resamples": 200, "seed": 0}
    out = ds.corrected_transfer((ITEMS, blind), (ITEMS, prompted), boot)
    assert out["defined"] is False and "exactly 0" in out["reason"] and math.isnan(out["rho"])
    # a biased bare model with perfect transfer, prompted over 3 seeds (pairs matched by id across seed counts)
    sc = scenario(ITEMS, PAIRING, a_sb=0.3)
    from audit.datasets.winobias.simulate import simulate_selections
    bare = simulate_selections(ITEMS, PAIRING, sc, accuracy=0.75, disagreement=0.1, rng=rng)
    seeds = [x for _ in range(3) for x in simulate_selections(ITEMS, PAIRING, sc, accuracy=0.75, disagreement=0.1, rng=rng)]
    out = ds.corrected_transfer((ITEMS, bare), (ITEMS * 3, seeds), boot)
    assert out["defined"] and out["rho"] > 0.8 and out["rho_ci"][0] > 0.5
