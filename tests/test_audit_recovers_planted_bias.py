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

from audit.datasets.winobias.reference_model import planted_association

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
        # small and far within a_sb's 0.15: reference-fair is trained to the gold referent, not made gender-blind, so
        # its few errors (about 4% of the bare cloze) may lean; on one CPU its intrinsic theta read 0.035 [0.008, 0.066]
        # on the embedded default's 1,264 items (swap p 0.03; the build's floating point differs between CPUs)
        assert fair[cond]["debiased_effect_ci"][1] < 0.10
        assert biased[cond]["swap_p_value"] < 0.01


def test_the_planted_effect_is_recovered_within_the_biased_models_interval(audits):
    """The model's true effect on the audited items is contained in its interval, and it is the planted one.

    The reference model carries its planted rule only approximately (the bias is installed in its output
    layer in proportion to the mean gold margin, so items with a large or small margin of their own cross
    the rule's threshold late or early): on the default items it gives the rule's answer to about 83% of
    items, and to about 73% of those the rule sends to the stereotyped distractor. The rule's own theta
    (0.668) is therefore not this model's truth, and its interval ([0.490, 0.655]) rightly excludes it.
    The model answers deterministically (greedy over log-likelihoods), so its true O-SB on these items is
    exactly the mean of its pairs' x, and theta the root mean square of those (no noise to remove), on the
    same twin pairs the gate uses."""
    import numpy as np

    from audit.datasets.winobias.reference_model import planted_choice
    from audit.datasets.winobias import WinoBias
    from audit.datasets.winobias.items import Item
    from audit.datasets.winobias.selection import occupation_sums

    results = audits["reference-biased"][1]
    by_id = {k: Item.from_dict(d) for k, d in results["items"].items()}
    chosen = results["models"][0]["choices"]["intrinsic"]
    items, selections = [by_id[c["item"]] for c in chosen], [c["selected"] for c in chosen]
    planted = [planted_choice("reference-biased", it, "intrinsic") for it in items]
    assert sum(p == s for p, s in zip(planted, selections)) >= 0.8 * len(items)  # it carries the rule, approximately
    s, _, n = occupation_sums(WinoBias().pair_table(items, selections))
    truth = float(np.sqrt(np.mean((s[n >= 2] / n[n >= 2]) ** 2)))
    lo, hi = conditions(results)["intrinsic"]["debiased_effect_ci"]
    assert truth >= 0.3 and lo <= truth <= hi, (truth, lo, hi)


def test_transfer_is_high_for_the_biased_model_and_low_for_the_nontransfer_model(audits):
    biased = audits["reference-biased"][1]["models"][0]["transfer"]["zero_shot"]
    nontransfer = audits["reference-nontransfer"][1]["models"][0]["transfer"]["zero_shot"]
    assert biased["pearson"] >= 0.8 and biased["n"] == 40
    assert nontransfer["pearson"] < 0.5
    assert nontransfer["pearson_ci"][1] < biased["pearson_ci"][0]
