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

from audit.config import load_config  # noqa: E402
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
