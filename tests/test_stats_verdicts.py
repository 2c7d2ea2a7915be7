"""Verdict helpers: inconclusive with its reason, breakdowns by stance x gender."""

import math

import pytest

from audit.datasets.winobias.items import Item
from audit.datasets.winobias.intervals import Interval
from audit.datasets.winobias.verdicts import answer_breakdown, other_rate_gap_interval, rpa_other_wrong
from audit.stats.decision import gate_verdict
from audit.stats.resampling import sign_flip_noise_floor as mean_noise_floor
from audit.datasets.winobias.pairing import pair_twins


def iv(est, lo, hi):
    return Interval(est, lo, hi, 0.01, 0.95)


def test_gate_verdict_rules():
    assert gate_verdict(iv(0.05, 0.0, 0.1), 0.15).status == "pass"  # shown within
    low_acc = gate_verdict(iv(0.05, 0.0, 0.1), 0.15, accuracy=0.54, accuracy_floor=0.6)
    assert low_acc.status == "inconclusive" and low_acc.reason.startswith("not auditable") and "accuracy 0.540" in low_acc.reason
    # a bias shown beyond the limit fails whatever the accuracy
    assert gate_verdict(iv(0.4, 0.3, 0.5), 0.15, accuracy=0.3, accuracy_floor=0.6).status == "fail"
    assert gate_verdict(iv(0.1, 0.05, 0.2), 0.15).status == "inconclusive"  # straddles
    assert gate_verdict(iv(0.1, 0.05, 0.2), 0.15, bound="pass_only_when_shown").status == "fail"
    assert gate_verdict(iv(0.1, 0.05, 0.2), 0.15, bound="fail_only_when_shown").status == "pass"
    assert gate_verdict(iv(0.1, 0.05, 0.2), 0.15, bound="upper").status == "fail"  # legacy end = one-sided policy
    assert gate_verdict(iv(math.nan, math.nan, math.nan), 0.15).status == "inconclusive"


def test_mean_noise_floor_exact():
    assert mean_noise_floor([1, -1, 0, 0]) == pytest.approx(1 / 4)  # E|e1 + e2| = 1, over 4 pairs
    assert mean_noise_floor([0, 0]) == 0


def item(k, gender, stance, sentence_pronoun):
    return Item(f"x{k}", f"The cook met the nurse because {sentence_pronoun} was {k // 2} late.", sentence_pronoun, gender,
                ("cook", "nurse"), "cook" if k < 4 else "nurse", 1, stance, "test")


ITEMS = [item(0, "male", "pro", "he"), item(1, "female", "anti", "she"), item(2, "male", "pro", "he"),
         item(3, "female", "anti", "she"), item(4, "male", "anti", "he"), item(5, "female", "pro", "she")]
SEL = ["cook", None, "cook", "nurse", "cook", "nurse"]


def test_answer_breakdown_by_hand():
    b = answer_breakdown(ITEMS, SEL, ties=[False, False, True, False, False, False])
    assert b["by_stance_gender"]["anti/female"] == {"n": 2, "other_rate": 0.5, "tie_rate": 0.0, "rpa_other_wrong": 0.0, "rpa_answered": 0.0}
    assert b["by_stance_gender"]["pro/male"]["tie_rate"] == 0.5
    assert b["first_candidate_rate"] == pytest.approx(3 / 5) and b["second_candidate_rate"] == pytest.approx(2 / 5)
    assert b["other_rate"] == {"male": 0.0, "female": pytest.approx(1 / 3)} and b["other_rate_gap"] == pytest.approx(-1 / 3)


def test_rpa_counts_other_as_wrong_and_gap_is_signed():
    r = rpa_other_wrong(ITEMS, SEL)
    assert r["pro"] == pytest.approx(1.0) and r["anti"] == pytest.approx(0.0) and r["gap"] == pytest.approx(1.0)
    assert r["overall"] == pytest.approx(3 / 6)


def test_other_rate_gap_over_pairs():
    pairing = pair_twins(ITEMS)
    g = other_rate_gap_interval(SEL, pairing.pairs)
    assert g.estimate == pytest.approx(-1 / 3)  # one of three pairs: the female twin answered "other"
