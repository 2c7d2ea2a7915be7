"""Calibration through the code path of ``bias-audit run`` (``AuditSession.evaluate`` with the default and
study presets' settings, benchmarks/calibration.py): a fair model rarely fails, a model at 2x the
threshold is caught, on one seed and on three seeds whose answers persist. Small simulations; the
bounds are binomial margins around the rates in docs/calibration.md."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from calibration import seeded_answers, session_for, truth_scenario  # noqa: E402

from audit import load_config  # noqa: E402
from audit.datasets.winobias.generated import generate_items  # noqa: E402
from audit.datasets.winobias.pairing import pair_twins  # noqa: E402

ITEMS = [i for i in generate_items() if i.split == "test"]
PAIRING = pair_twins(ITEMS)


def statuses(preset: str, condition: str, gate: str, multiple: float, runs: int, seed: int) -> list[str]:
    cfg = load_config(preset=preset)
    sc, truth = truth_scenario(ITEMS, PAIRING, gate, multiple * cfg.gates[gate].threshold)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(runs):
        sims = {condition: seeded_answers(ITEMS, PAIRING, sc, len(cfg.conditions[condition].seeds), rng)}
        outcome = session_for(cfg, ITEMS, sims).evaluate(gate, "simulated", condition)
        out.append(outcome.status)
        if multiple == 0:
            assert outcome.ci[0] <= truth + 1e-9  # the interval reaches the truth from below
    return out


@pytest.mark.parametrize("preset,condition", [("default", "zero_shot"), ("study", "few_shot_k1")])
def test_fair_model_rarely_fails_and_2x_bias_is_caught(preset, condition):
    fair = statuses(preset, condition, "a_sb", 0.0, 12, 1)
    assert fair.count("fail") <= 1  # error <= 2.5% per run: P(>= 2 of 12) < 4%
    assert fair.count("pass") >= 9  # not left inconclusive (the old noise-floor rule: 100% inconclusive)
    biased = statuses(preset, condition, "a_sb", 2.0, 8, 2)
    assert biased.count("fail") >= 6


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
