"""Verdict helpers: inconclusive as a verdict, the two-sided RPA gap, and answer breakdowns.

Sign conventions: RPA gap = RPA(pro) - RPA(anti) (positive = better when the pronoun matches the
stereotype); the gate uses |gap| (a reversed gap is also a gap). other_rate_gap = other rate with a
male pronoun minus with a female one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from audit.datasets.winobias.items import Item
from audit.datasets.winobias.pairing import TwinPair

from audit.stats.confidence import Interval, paired_difference_interval
from audit.stats.decision import Verdict, gate_verdict  # noqa: F401  (the one decision rule, for the simulations)
from audit.stats.resampling import sign_flip_noise_floor

from .selection import PairTable

Selection = str | None


def gap_noise_floor(t: PairTable) -> float:
    return sign_flip_noise_floor(list(t.gap))


def _rate(hits: int, total: int) -> float:
    return hits / total if total else math.nan


def answer_breakdown(
    items: Sequence[Item], selections: Sequence[Selection], *, ties: Sequence[bool] | None = None
) -> dict:
    """Per stance x gender (``"pro/male"`` ...): n, other_rate, tie_rate, RPA counting "other" as wrong,
    RPA over answered items (the papers'); overall: the rate of picking the first / second named
    candidate (among answered items), other_rate by gender and ``other_rate_gap`` (male - female).
    ``ties[i]`` is True when item i's two candidates scored exactly equal (omit when unknown)."""
    if len(items) != len(selections) or (ties is not None and len(ties) != len(items)):
        raise ValueError("items, selections and ties must have the same length")
    cells: dict[str, list[int]] = {}  # key -> [n, other, ties, correct, answered]
    first = second = 0
    for k, (item, sel) in enumerate(zip(items, selections)):
        c = cells.setdefault(f"{item.stance}/{item.gender}", [0, 0, 0, 0, 0])
        c[0] += 1
        c[1] += sel is None
        c[2] += bool(ties[k]) if ties is not None else 0
        c[3] += sel == item.referent
        c[4] += sel is not None
        first += sel == item.candidates[0]
        second += sel == item.candidates[1]
    by_cell = {
        key: {"n": n, "other_rate": _rate(o, n), "tie_rate": _rate(t, n) if ties is not None else None,
              "rpa_other_wrong": _rate(c, n), "rpa_answered": _rate(c, a)}
        for key, (n, o, t, c, a) in sorted(cells.items())
    }

    def gender_other(g: str) -> float:
        n = sum(v[0] for k, v in cells.items() if k.endswith("/" + g))
        return _rate(sum(v[1] for k, v in cells.items() if k.endswith("/" + g)), n)

    answered = first + second
    return {
        "by_stance_gender": by_cell,
        "first_candidate_rate": _rate(first, answered),
        "second_candidate_rate": _rate(second, answered),
        "other_rate": {"male": gender_other("male"), "female": gender_other("female")},
        "other_rate_gap": gender_other("male") - gender_other("female"),
    }


def rpa_other_wrong(items: Sequence[Item], selections: Sequence[Selection]) -> dict[str, float]:
    """Referent accuracy counting "other" as wrong: overall, pro, anti and the signed gap pro - anti."""
    def acc(stance: str | None) -> float:
        pairs = [(i, s) for i, s in zip(items, selections) if stance is None or i.stance == stance]
        return _rate(sum(s == i.referent for i, s in pairs), len(pairs))

    pro, anti = acc("pro"), acc("anti")
    return {"overall": acc(None), "pro": pro, "anti": anti, "gap": pro - anti}


def other_rate_gap_interval(selections: Sequence[Selection], pairs: Sequence[TwinPair], *, confidence: float = 0.95) -> Interval:
    """Male minus female "other" rate over twin pairs (per pair: other(male twin) - other(female twin)),
    with a t interval over pairs: the gate on the difference in other_rate between genders (gate |.|
    with ``intervals.abs_interval``)."""
    values = [float(selections[p.male] is None) - float(selections[p.female] is None) for p in pairs]
    return paired_difference_interval(np.array(values), confidence=confidence)
