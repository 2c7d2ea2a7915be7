"""The audit suite: fairness gates on WinoBias pronoun co-reference (Zhao et al. 2018), after
Mackraz et al. 2024 and Sivakumar, Mackraz et al. 2025, and on BBQ question answering (Parrish et
al. 2022), and on CrowS-Pairs sentence pairs (Nangia et al. 2020). A run audits one dataset; the other
datasets' gates are skipped, saying so.

Each test is parametrised by the bias-audit pytest plugin over the audited models and the conditions
its gate applies to; thresholds, bounds and rationales come from the config ([tool.bias-audit] in
pyproject.toml, or --audit-config). Waive a known failure with ``pytest.mark.xfail(reason=...)``:
it is shown as waived in the report, never hidden.
"""

import pytest


@pytest.mark.audit_gate("a_sb")
def test_aggregate_selection_bias(audit_outcome):
    """theta, the debiased root-mean-square O-SB over occupations, is shown within the threshold (the papers' A-SB, mean |O-SB|, is reported beside it)."""
    assert audit_outcome.passed, audit_outcome.message


@pytest.mark.audit_gate("rpa_gap")
def test_pro_anti_accuracy_gap(audit_outcome):
    """Accuracy on pro-stereotypical items does not exceed anti-stereotypical accuracy by more than the threshold."""
    assert audit_outcome.passed, audit_outcome.message


@pytest.mark.audit_gate("worst_o_sb")
def test_worst_occupation_selection_bias(audit_outcome):
    """No single occupation's |O-SB| exceeds the threshold."""
    assert audit_outcome.passed, audit_outcome.message


@pytest.mark.audit_gate("accuracy")
def test_referent_accuracy_floor(audit_outcome):
    """The model does the task: referent accuracy is above the floor."""
    assert audit_outcome.passed, audit_outcome.message


@pytest.mark.audit_gate("transfer")
def test_bias_does_not_transfer(audit_outcome):
    """A biased bare model whose bias carries into the prompted task (high noise-corrected rho) fails: prompting will not fix it."""
    assert audit_outcome.passed, audit_outcome.message


@pytest.mark.audit_gate("a_sb_regression")
def test_a_sb_no_worse_than_baseline(audit_outcome):
    """With --audit-baseline: A-SB has not got significantly worse than in the approved run."""
    assert audit_outcome.passed, audit_outcome.message


@pytest.mark.audit_gate("accuracy_regression")
def test_accuracy_no_worse_than_baseline(audit_outcome):
    """With --audit-baseline: referent accuracy has not dropped significantly below the approved run."""
    assert audit_outcome.passed, audit_outcome.message


# --- BBQ (Parrish et al. 2022; Sivakumar, Mackraz et al. 2025): skipped on WinoBias runs --------------


@pytest.mark.audit_gate("bbq_s_amb")
def test_bbq_ambiguous_bias(audit_outcome):
    """BBQ: in ambiguous contexts no category's |s_AMB| exceeds the threshold (worst category reported)."""
    assert audit_outcome.passed, audit_outcome.message


@pytest.mark.audit_gate("bbq_s_dis")
def test_bbq_disambiguated_bias(audit_outcome):
    """BBQ: in disambiguated contexts no category's |s_DIS| exceeds the threshold (worst category reported)."""
    assert audit_outcome.passed, audit_outcome.message


@pytest.mark.audit_gate("bbq_accuracy_disambig")
def test_bbq_disambiguated_accuracy_floor(audit_outcome):
    """BBQ: the model answers correctly when the context states the answer."""
    assert audit_outcome.passed, audit_outcome.message


@pytest.mark.audit_gate("debiasing_no_increase")
def test_debiasing_prompt_does_not_raise_bias(audit_outcome):
    """A debiasing strategy does not make bias significantly worse than the zero-shot prompt."""
    assert audit_outcome.passed, audit_outcome.message


# --- CrowS-Pairs (Nangia et al. 2020): skipped on other datasets' runs ---------------------------------


@pytest.mark.audit_gate("crows_pairs_bias")
def test_crows_pairs_stereotype_preference(audit_outcome):
    """CrowS-Pairs: in every bias type the share of pairs where the more stereotypical sentence is preferred stays near 0.5."""
    assert audit_outcome.passed, audit_outcome.message
