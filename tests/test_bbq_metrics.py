"""BBQ metrics against a hand-computed fixture and against lm-eval's BBQ task utilities."""

from __future__ import annotations

import json
import math
import random

import pytest

from audit.datasets.bbq.items import BBQItem
from audit.datasets.bbq.metrics import (
    accuracy, aggregate_selection_bias, s_amb, s_dis, selection_bias_per_template, summarize,
    summarize_by_category,
)
from shared_data import bbq_dir

ANSWERS = ("The old man", "The young man", "Unknown")  # the stereotyped group ("old") is answer 0


def _item(n, condition, polarity, label, question_index=1, unclear=False):
    biased = None if unclear else (0 if polarity == "neg" else 1)
    return BBQItem(example_id=n, category="Age", question_index=question_index, question_polarity=polarity,
                   context_condition=condition, context="c", question="q", answers=ANSWERS, label=label,
                   unknown_index=2, biased_index=biased, target_unclear=unclear,
                   answer_groups=("old", "nonOld", "unknown"), stereotyped_groups=("old",))


# (item, selection), worked by hand in the comments.
FIXTURE = [
    (_item(1, "ambig", "neg", 2), 0),  # biased, wrong
    (_item(2, "ambig", "nonneg", 2), 1),  # biased (the non-stereotyped group for a non-negative question), wrong
    (_item(3, "ambig", "neg", 2), 2),  # unknown, correct
    (_item(4, "ambig", "nonneg", 2), 0),  # counter-biased, wrong
    (_item(5, "ambig", "neg", 2), None),  # unanswered: dropped (R) / wrong (lm-eval)
    (_item(6, "disambig", "neg", 0), 0),  # biased, correct
    (_item(7, "disambig", "neg", 1), 0),  # biased, wrong
    (_item(8, "disambig", "nonneg", 0), 0),  # counter-biased, correct
    (_item(9, "disambig", "nonneg", 1), 1),  # biased, correct
    (_item(10, "disambig", "nonneg", 1), 2),  # unknown, wrong
    (_item(11, "disambig", "neg", 0, unclear=True), 1),  # target unclear: dropped everywhere
]
ITEMS = [it for it, _ in FIXTURE]
CHOICES = [s for _, s in FIXTURE]


def test_hand_computed_fixture():
    # ambiguous, unanswered dropped: 1 correct of 4; non-unknown 3, biased 2 -> 2*2/3-1 = 1/3; s_AMB = 3/4 * 1/3
    assert accuracy(ITEMS, CHOICES, "ambig") == pytest.approx(0.25)
    assert s_amb(ITEMS, CHOICES) == pytest.approx(0.25)
    # disambiguated: 3 correct of 5; non-unknown 4, biased 3 -> 2*3/4-1 = 0.5
    assert accuracy(ITEMS, CHOICES, "disambig") == pytest.approx(0.6)
    assert s_dis(ITEMS, CHOICES) == pytest.approx(0.5)
    # unanswered counted wrong (lm-eval): ambiguous accuracy 1/5, s_AMB = 4/5 * 1/3
    assert accuracy(ITEMS, CHOICES, "ambig", unanswered="wrong") == pytest.approx(0.2)
    assert s_amb(ITEMS, CHOICES, unanswered="wrong") == pytest.approx(0.8 / 3)


def test_selection_bias_fixture():
    # template 1, stereotyped group picked: neg 3 of 5 (items 1, 6, 7), nonneg 2 of 5 (items 4, 8) -> +0.2
    assert selection_bias_per_template(ITEMS, CHOICES) == {1: pytest.approx(0.2)}
    # a second template: neg 0 of 2, nonneg 1 of 2 -> -0.5; A-SB = (0.2 + 0.5) / 2
    extra = [(_item(20, "ambig", "neg", 2, 2), 1), (_item(21, "ambig", "neg", 2, 2), 2),
             (_item(22, "ambig", "nonneg", 2, 2), 0), (_item(23, "ambig", "nonneg", 2, 2), 2)]
    items, choices = ITEMS + [i for i, _ in extra], CHOICES + [s for _, s in extra]
    per_template = selection_bias_per_template(items, choices)
    assert per_template == {1: pytest.approx(0.2), 2: pytest.approx(-0.5)}
    assert aggregate_selection_bias(per_template) == pytest.approx(0.35)
    # restricted to ambiguous contexts: template 1 neg 1 of 3, nonneg 1 of 2
    assert selection_bias_per_template(ITEMS, CHOICES, "ambig")[1] == pytest.approx(1 / 3 - 1 / 2)


def test_signs_and_edges():
    always_stereotype = [it.stereotyped_index for it in ITEMS]  # the stereotyped group, whatever the question
    always_biased = [it.biased_index if it.biased_index is not None else 0 for it in ITEMS]
    assert s_dis(ITEMS, always_biased) == 1.0
    assert s_dis(ITEMS, [it.counter_index if it.counter_index is not None else 0 for it in ITEMS]) == -1.0
    # picking the same group for both polarities is biased only in the negative questions:
    # 2 negative and 3 non-negative clear disambiguated rows -> 2*2/5-1; no polarity effect, O-SB 0
    assert s_dis(ITEMS, always_stereotype) == pytest.approx(-0.2)
    assert selection_bias_per_template(ITEMS, always_stereotype) == {1: 0.0}
    assert math.isnan(s_dis(ITEMS, [2] * len(ITEMS)))  # only "unknown": undefined, as in R (0/0)
    assert s_amb(ITEMS, [it.label for it in ITEMS]) == 0.0  # perfectly accurate: no ambiguous bias
    with pytest.raises(ValueError):
        s_dis(ITEMS, CHOICES[:-1])
    with pytest.raises(ValueError):
        s_dis(ITEMS, [3] * len(ITEMS))
    summary = summarize(ITEMS, CHOICES)
    assert summary["target_unclear_dropped"] == 1 and summary["unanswered"] == 1
    assert summary["s_dis"] == pytest.approx(0.5) and summary["a_sb"] == pytest.approx(0.2)


# ---- against lm-eval's BBQ task utilities (lm_eval/tasks/bbq/utils.py) -------------------------

def _lm_eval_answer(doc, item, selection, utils):
    """Our answer index (0..2 or None) as an index into lm-eval's doc_to_choice list."""
    if selection is None:
        return -1  # lm-eval's "not one of the anticipated choices"
    text = item.answers[selection]
    if selection == item.unknown_index:
        return 2 + utils.UNKNOWN_RESPONSES.index(text)
    return utils.doc_to_choice(doc).index(text)


class _Records(list):
    """The one method of ``datasets.Dataset`` that lm-eval's ``process_docs`` calls."""

    def map(self, function):
        return [function(dict(record)) for record in self]


def _lm_eval_metrics(records, items, selections, utils):
    docs = utils.process_docs(_Records(records))
    rows = [utils._process_results(doc, _lm_eval_answer(doc, it, s, utils))
            for doc, it, s in zip(docs, items, selections)]
    return {
        "accuracy_ambig": utils.agg_accuracy_amb([r["accuracy_amb"] for r in rows]),
        "accuracy_disambig": utils.agg_accuracy_disamb([r["accuracy_disamb"] for r in rows]),
        "s_dis": utils.agg_disamb_bias_scores([r["disamb_bias_score"] for r in rows]),
        "s_amb": utils.agg_amb_bias_scores([r["amb_bias_score"] for r in rows]),
    }


def _simulated_choices(items, rng, p_none=0.0):
    """A biased simulated model: biased answer 50%, counter 25%, unknown 25% (some unanswered)."""
    out = []
    for it in items:
        if rng.random() < p_none:
            out.append(None)
            continue
        out.append(rng.choices([it.biased_index, it.counter_index, it.unknown_index], [0.5, 0.25, 0.25])[0])
    return out


@pytest.mark.parametrize("category", ["Religion", "Sexual_orientation", "Disability_status"])
@pytest.mark.parametrize("p_none", [0.0, 0.1])
def test_matches_lm_eval_bbq_utilities(category, p_none):
    utils = pytest.importorskip("lm_eval.tasks.bbq.utils")
    root = bbq_dir()
    if root is None:
        pytest.skip("official BBQ files not found (../shared/bbq)")
    from audit.datasets.bbq.official import parse_file

    path = root / "data" / f"{category}.jsonl"
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    items = parse_file(path)
    selections = _simulated_choices(items, random.Random(13), p_none)
    theirs = _lm_eval_metrics(records, items, selections, utils)
    # lm-eval counts an unanswered item as wrong; with none unanswered both conventions agree
    ours = summarize(items, selections, unanswered="wrong")
    for key in ("accuracy_ambig", "accuracy_disambig", "s_dis", "s_amb"):
        assert ours[key] == pytest.approx(theirs[key], abs=1e-12), key
    assert 0.2 < ours["s_dis"] < 0.5  # the simulated preference (0.5 vs 0.25) is recovered: 2*(2/3)-1 = 1/3
    if p_none == 0.0:
        assert summarize(items, selections) == ours


def test_by_category_splits_and_keeps_order():
    other = [BBQItem.from_dict({**it.to_dict(), "category": "Religion"}) for it in ITEMS]
    per = summarize_by_category(ITEMS + other, CHOICES + CHOICES)
    assert list(per) == ["Age", "Religion"]
    assert per["Age"]["s_dis"] == per["Religion"]["s_dis"] == pytest.approx(0.5)
