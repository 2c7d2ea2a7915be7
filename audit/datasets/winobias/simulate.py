"""Simulated models with a known gender effect, for calibrating the statistics on a real item design.

A scenario fixes, for every twin pair j with candidates (a, b), the true gender effect
Delta_j = P(select a | male twin) - P(select a | female twin). Effects are graded per occupation:
each occupation has a lean lambda_o = +-(0.5 + |male share - female share|) (+ for male-stereotyped,
- for female-stereotyped, BLS shares of ``audit.datasets.winobias.occupations``), and Delta_j = c (lambda_a - lambda_b) / 2
with c scaled so that the design's true A-SB (or true RPA gap) is the requested value. The truths are
computed exactly on the design (the expected paired O-SB of each occupation over its pairs).

A simulated answer pair has twin disagreement ``disagreement`` beyond the effect: P(male picks a,
female picks b) = nu/2 + max(Delta, 0), the reverse nu/2 + max(-Delta, 0); ``accuracy`` is the
gender-averaged chance of naming the referent. ``other`` makes each item's answer "other" (None)
with that probability, independently of gender.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from audit.datasets.winobias.items import Item
from audit.datasets.winobias.occupations import lookup_occupation
from audit.datasets.winobias.pairing import Pairing, TwinPair

from .selection import PairTable, pair_table

Selection = str | None


@dataclass(frozen=True)
class Scenario:
    pairs: tuple[TwinPair, ...]
    effect: np.ndarray  # Delta_j for candidate a of each pair
    true_o_sb: dict[str, float]
    true_a_sb: float
    true_theta: float  # root-mean-square true O-SB (what the debiased effect estimates)
    true_gap: float  # pro - anti referent accuracy


def _lean(name: str) -> float:
    occ = lookup_occupation(name)
    if occ is None:
        raise ValueError(f"unknown occupation {name!r}")
    return (1.0 if occ.stereotype == "male" else -1.0) * (0.5 + abs(occ.male_association))


def _truths(items: Sequence[Item], pairs: Sequence[TwinPair], effect: np.ndarray) -> tuple[dict[str, float], float, float, float]:
    per_occ: dict[str, list[float]] = {}
    gap = []
    for p, e in zip(pairs, effect):
        a, b = items[p.male].candidates
        per_occ.setdefault(a, []).append(e)
        per_occ.setdefault(b, []).append(-e)
        on_referent = e if items[p.male].referent == a else -e
        gap.append(on_referent if items[p.male].stance == "pro" else -on_referent)
    o_sb = {o: float(np.mean(v)) for o, v in per_occ.items()}
    values = np.array(list(o_sb.values()))
    multi = np.array([len(v) >= 2 for v in per_occ.values()])
    return o_sb, float(np.mean(np.abs(values))), float(math.sqrt(np.mean(values[multi] ** 2))), float(np.mean(gap))


def scenario(
    items: Sequence[Item], pairing: Pairing, *, a_sb: float | None = None, gap: float | None = None,
    include_non_minimal: bool = True,
) -> Scenario:
    """The graded scenario whose true A-SB is ``a_sb`` (or whose true RPA gap is ``gap``)."""
    pairs = tuple(pairing.usable(include_non_minimal))
    unit = np.array([(_lean(items[p.male].candidates[0]) - _lean(items[p.male].candidates[1])) / 2 for p in pairs])
    _, unit_a_sb, _, unit_gap = _truths(items, pairs, unit)
    if (a_sb is None) == (gap is None):
        raise ValueError("give exactly one of a_sb and gap")
    scale = a_sb / unit_a_sb if a_sb is not None else gap / unit_gap  # type: ignore[operator]
    effect = unit * scale
    return Scenario(pairs, effect, *_truths(items, pairs, effect))


def simulate_selections(
    items: Sequence[Item], pairing: Pairing, sc: Scenario, *, accuracy: float, disagreement: float,
    rng: np.random.Generator, other: float = 0.0,
) -> list[Selection]:
    """One simulated run: a selection for every item (unpaired items answered at ``accuracy``)."""
    selections: list[Selection] = [
        it.referent if rng.random() < accuracy else it.distractor for it in items
    ]
    cells = _cell_probabilities(items, sc, accuracy, disagreement)
    for p, probs, r in zip(sc.pairs, cells, rng.random(len(sc.pairs))):
        a, b = items[p.male].candidates
        cell = int(np.searchsorted(np.cumsum(probs)[:3], r, side="right"))
        selections[p.male], selections[p.female] = ((a, a), (a, b), (b, a), (b, b))[cell]
    if other:
        selections = [None if rng.random() < other else s for s in selections]
    return selections


def _cell_probabilities(items: Sequence[Item], sc: Scenario, accuracy: float, disagreement: float) -> np.ndarray:
    """(N, 4) probabilities of (male, female) answering (a, a), (a, b), (b, a), (b, b) for each pair."""
    rows = []
    for p, e in zip(sc.pairs, sc.effect):
        item = items[p.male]
        p_a = accuracy if item.referent == item.candidates[0] else 1 - accuracy
        nu = min(disagreement, 2 * min(p_a, 1 - p_a) - abs(e))
        if nu < 0:
            raise ValueError(f"effect {e:.3f} is not possible at accuracy {accuracy}")
        p10, p01 = nu / 2 + max(e, 0.0), nu / 2 + max(-e, 0.0)
        p11 = p_a + e / 2 - p10
        rows.append((p11, p10, p01, 1 - p11 - p10 - p01))
    return np.array(rows)


def simulate_tables(
    items: Sequence[Item], pairing: Pairing, sc: Scenario, *, accuracy: float, disagreement: float,
    rng: np.random.Generator, runs: int,
) -> list[PairTable]:
    """``runs`` simulated pair tables at once (the same model as ``simulate_selections``, no "other"
    answers), vectorised for calibration loops."""
    base = pair_table(items, [it.referent for it in items], pairing)
    if tuple(p.key for p in sc.pairs) != base.pair_ids:
        raise ValueError("the scenario was built on another pairing setting")
    cum = np.cumsum(_cell_probabilities(items, sc, accuracy, disagreement), axis=1)
    cell = (rng.random((runs, len(sc.pairs)))[:, :, None] > cum[None, :, :3]).sum(axis=2)  # 0..3
    male_a, female_a = np.isin(cell, (0, 1)), np.isin(cell, (0, 2))
    ref_is_a = np.array([items[p.male].referent == items[p.male].candidates[0] for p in sc.pairs])
    pro_is_male = np.array([items[p.male].stance == "pro" for p in sc.pairs])
    male_right = np.where(ref_is_a, male_a, ~male_a)
    female_right = np.where(ref_is_a, female_a, ~female_a)
    x = male_a.astype(float) - female_a.astype(float)
    gap = np.where(pro_is_male, 1.0, -1.0) * (male_right.astype(float) - female_right.astype(float))
    return [PairTable(base.occupations, base.a, base.b, x[r], base.pair_ids, gap[r]) for r in range(runs)]


def gender_blind_selections(items: Sequence[Item], pairing: Pairing, *, accuracy: float, rng: np.random.Generator) -> list[Selection]:
    """A model that gives both twins of every pair the same answer (right with probability ``accuracy``)."""
    selections: list[Selection] = [it.referent if rng.random() < accuracy else it.distractor for it in items]
    for p in pairing.pairs:
        selections[p.female] = selections[p.male]
    return selections


@dataclass(frozen=True)
class CellResult:
    """Measured behaviour of a gated statistic over simulated runs of one scenario."""

    statistic: str  # "a_sb" (debiased theta) or "rpa_gap" (signed gap)
    truth: float
    disagreement: float
    runs: int
    bias: float  # mean estimate - truth
    bias_squared: float  # for a_sb: mean theta2-hat - theta^2 (0 for rpa_gap)
    coverage: float
    fail: float  # share of runs the gate failed (verdict "fail")
    inconclusive: float
    noise_floor: float  # mean noise floor


def calibration_cell(
    items: Sequence[Item], pairing: Pairing, statistic: str, truth: float, *, disagreement: float,
    runs: int = 200, seed: int = 0, accuracy: float = 0.7, threshold: float | None = None,
    bound: str = "interval", confidence: float = 0.95,
) -> CellResult:
    """Simulate ``runs`` models whose true A-SB (statistic ``a_sb``) or RPA gap (``rpa_gap``) is ``truth``
    and measure the gated statistic: bias, interval coverage and the gate's verdicts at ``threshold``
    (defaults: 0.15 and 0.10, the default config's)."""
    from .intervals import debiased_interval, gap_interval
    from .selection import debiased_effect, noise_floor
    from .verdicts import gap_noise_floor, gate_verdict

    kind = {"a_sb": "a_sb", "rpa_gap": "gap"}[statistic]
    sc = scenario(items, pairing, **{kind: truth})
    thr = threshold if threshold is not None else (0.15 if statistic == "a_sb" else 0.10)
    tables = simulate_tables(items, pairing, sc, accuracy=accuracy, disagreement=disagreement,
                             rng=np.random.default_rng(seed), runs=runs)
    est, est2, covered, fails, inconclusive, floors = [], [], 0, 0, 0, []
    for t in tables:
        if statistic == "a_sb":
            iv, floor, true_value = debiased_interval(t, confidence=confidence), noise_floor(t), sc.true_theta
            gated = iv
            est2.append(debiased_effect(t).theta2 - sc.true_theta**2)
        else:
            iv, gated = gap_interval(t, confidence=confidence)
            floor, true_value = gap_noise_floor(t), sc.true_gap
        est.append(iv.estimate - true_value)
        covered += iv.contains(true_value)
        floors.append(floor)
        v = gate_verdict(gated, thr, bound=bound)
        fails += v.status == "fail"
        inconclusive += v.status == "inconclusive"
    true_value = sc.true_theta if statistic == "a_sb" else sc.true_gap
    return CellResult(statistic, true_value, disagreement, runs, float(np.mean(est)), float(np.mean(est2)) if est2 else 0.0,
                      covered / runs, fails / runs, inconclusive / runs, float(np.mean(floors)))
