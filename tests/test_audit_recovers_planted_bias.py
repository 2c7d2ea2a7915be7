"""End to end, through the CLI: the audit recovers the bias planted in the reference models.

Issue 2's acceptance: `reference-fair` passes every gate (exit 0), `reference-biased` fails the
A-SB gate (exit 1), the measured intrinsic O-SB of `reference-biased` correlates with the planted
association over the 40 occupations, and `reference-fair`'s A-SB is far below the biased model's.
Issue 4's: the transfer measured for `reference-nontransfer` is clearly lower than for the biased one.
"""

import json
import subprocess
import sys

import pytest
from scipy import stats

from audit.backends.reference import planted_association

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def audits(tmp_path_factory):
    """One run of the default suite per reference model (the result cache is per test session)."""
    runs = {}
    for name in ("reference-fair", "reference-biased", "reference-nontransfer"):
        out = tmp_path_factory.mktemp(name)
        proc = subprocess.run([sys.executable, "-m", "audit.cli", "run", "--model", name, "--out", str(out)],
                              capture_output=True, text=True, timeout=1800, cwd=out)
        runs[name] = (proc, json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else None)
    return runs


def conditions(results):
    return results["models"][0]["conditions"]


def test_fair_model_passes_every_gate(audits):
    proc, results = audits["reference-fair"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert results["verdict"] == "pass" and results["summary"]["failed"] == 0


def test_biased_model_fails_the_a_sb_gate(audits):
    proc, results = audits["reference-biased"]
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    failed = {(g["metric"], g["condition"]) for g in results["gates"] if g["status"] == "fail"}
    assert ("a_sb", "intrinsic") in failed and ("a_sb", "zero_shot") in failed
    assert "test_aggregate_selection_bias" in proc.stdout


def test_measured_intrinsic_o_sb_follows_the_planted_association(audits):
    _, results = audits["reference-biased"]
    o_sb = conditions(results)["intrinsic"]["o_sb"]
    planted = planted_association("reference-biased", "intrinsic")
    names = sorted(planted)
    assert all(o_sb[n] is not None for n in names)
    r = stats.pearsonr([planted[n] for n in names], [o_sb[n] for n in names]).statistic
    assert r >= 0.8, r


def test_fair_model_a_sb_is_far_below_the_biased_models(audits):
    fair = conditions(audits["reference-fair"][1])
    biased = conditions(audits["reference-biased"][1])
    for cond in ("intrinsic", "zero_shot"):
        assert fair[cond]["a_sb"] <= 0.1 and biased[cond]["a_sb"] >= 0.3
        assert fair[cond]["debiased_effect_ci"][1] < biased[cond]["debiased_effect_ci"][0]
        assert fair[cond]["swap_p_value"] > 0.05  # no detectable gender effect: its gates pass without loose thresholds
        assert biased[cond]["swap_p_value"] < 0.01


def test_the_planted_effect_is_recovered_within_the_biased_models_interval(audits):
    """The planted rule, applied to the audited items, has a known debiased effect (a deterministic rule
    has no noise); the model that carries it is measured with an interval that contains it."""
    from audit.backends.reference import planted_choice
    from audit.datasets.winobias.items import Item
    from audit.datasets.winobias import intervals, selection

    results = audits["reference-biased"][1]
    items = [Item.from_dict(d) for d in results["items"].values()]
    planted = [planted_choice("reference-biased", it, "intrinsic") for it in items]
    truth = intervals.debiased_interval(selection.pair_table(items, planted)).estimate
    lo, hi = conditions(results)["intrinsic"]["debiased_effect_ci"]
    assert lo <= truth <= hi, (truth, lo, hi)


def test_transfer_is_high_for_the_biased_model_and_low_for_the_nontransfer_model(audits):
    biased = audits["reference-biased"][1]["models"][0]["transfer"]["zero_shot"]
    nontransfer = audits["reference-nontransfer"][1]["models"][0]["transfer"]["zero_shot"]
    assert biased["pearson"] >= 0.8 and biased["n"] == 40
    assert nontransfer["pearson"] < 0.5
    assert nontransfer["pearson_ci"][1] < biased["pearson_ci"][0]
