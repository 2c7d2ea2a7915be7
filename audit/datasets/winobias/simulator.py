"""WinoBias models of known truth for ``bias-audit calibrate`` (``audit.run.calibrate.Simulator``), on
the graded per-pair gender effect of ``audit.datasets.winobias.simulate``: each twin pair's true effect follows the
occupations' labour-statistics lean, scaled so that the gated truth (theta for a_sb, |RPA gap| for
rpa_gap) is the requested value; twins disagree beyond the effect by the noise level's rate."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from audit.datasets.winobias.simulate import Scenario, _cell_probabilities, _lean, _truths, scenario, simulate_selections

ACCURACY = 0.75
DISAGREEMENT = {"low": 0.1, "high": 0.4}  # twin disagreement beyond the planted effect
MAX_EFFECT = 0.45  # the largest per-pair effect a transfer model plants (0.5 is the most accuracy 0.75 allows)


@dataclass
class WinoBiasModel:
    items: Sequence
    pairing: object
    sc: Scenario
    disagreement: float
    truth: dict[str, float]

    def answer(self, rng: np.random.Generator) -> list:
        return simulate_selections(self.items, self.pairing, self.sc, accuracy=ACCURACY, disagreement=self.disagreement, rng=rng)


@dataclass
class StereotypedModel:
    """Answers the candidate its occupation stereotype pairs with the pronoun's gender with probability
    ``share``, else as the fair model (right with probability ``ACCURACY``), each item on its own."""

    items: Sequence
    p_first: np.ndarray  # P(select candidates[0]) per item
    truth: dict[str, float]

    def answer(self, rng: np.random.Generator) -> list:
        first = rng.random(len(self.items)) < self.p_first
        return [it.candidates[0] if f else it.candidates[1] for it, f in zip(self.items, first)]


class WinoBiasSimulator:
    gates = ("a_sb", "rpa_gap", "worst_o_sb")
    noise_levels = {k: f"twin disagreement {v} beyond the effect, accuracy {ACCURACY}" for k, v in DISAGREEMENT.items()}
    planted_where = "every occupation, graded by its labour-statistics lean"

    def __init__(self, items: Sequence, pairing, include_non_minimal: bool = True):
        self.items, self.pairing, self.include_non_minimal = list(items), pairing, include_non_minimal
        self.planted_items = len(self.items)

    def _model(self, sc: Scenario, noise: str) -> WinoBiasModel:
        _cell_probabilities(self.items, sc, ACCURACY, DISAGREEMENT[noise])  # ValueError when the effect is out of reach
        truth = {"a_sb": sc.true_theta, "rpa_gap": abs(sc.true_gap),
                 "worst_o_sb": max((abs(v) for v in sc.true_o_sb.values()), default=0.0)}
        return WinoBiasModel(self.items, self.pairing, sc, DISAGREEMENT[noise], truth)

    def fair(self, noise: str) -> WinoBiasModel:
        return self._model(scenario(self.items, self.pairing, a_sb=0.0, include_non_minimal=self.include_non_minimal), noise)

    def planted(self, gate: str, value: float, noise: str) -> WinoBiasModel:
        kw = {"include_non_minimal": self.include_non_minimal}
        if gate == "rpa_gap":
            return self._model(scenario(self.items, self.pairing, gap=value, **kw), noise)
        unit = scenario(self.items, self.pairing, a_sb=0.1, **kw)
        if gate == "a_sb":
            scale = value / unit.true_theta
        elif gate == "worst_o_sb":
            scale = value / max(abs(v) for v in unit.true_o_sb.values())
        else:
            raise ValueError(f"gate '{gate}' cannot be planted in a WinoBias simulation")
        return self._model(scenario(self.items, self.pairing, a_sb=0.1 * scale, **kw), noise)

    def jointly(self, values: dict[str, float], noise: str) -> WinoBiasModel:
        """A model with theta (``values["a_sb"]``) and |RPA gap| (``values["rpa_gap"]``) planted at once: the
        graded labour-statistics profile scaled to the gap, plus the same profile with its gap-carrying part
        removed (w_j = u_j - mean(s u) s_j, s_j the pair's sign in the gap), which moves O-SB and not the gap,
        scaled to reach theta (theta^2 is quadratic in its weight). Other gates in ``values`` are not planted: the
        worst |O-SB| follows from the profile. ValueError when out of reach."""
        theta, gap = values["a_sb"], values["rpa_gap"]
        pairs = tuple(self.pairing.usable(self.include_non_minimal))
        unit = np.array([(_lean(self.items[p.male].candidates[0]) - _lean(self.items[p.male].candidates[1])) / 2
                         for p in pairs])
        sign = np.array([(1.0 if self.items[p.male].referent == self.items[p.male].candidates[0] else -1.0)
                         * (1.0 if self.items[p.male].stance == "pro" else -1.0) for p in pairs])
        unit_gap = float(np.mean(sign * unit))
        base, w = unit * gap / unit_gap, unit - unit_gap * sign

        def theta2(beta: float) -> float:
            return _truths(self.items, pairs, base + beta * w)[2] ** 2

        c, plus, minus = theta2(0.0), theta2(1.0), theta2(-1.0)
        a, b = (plus + minus) / 2 - c, (plus - minus) / 2  # theta^2(beta) = a beta^2 + b beta + c
        disc = b * b - 4 * a * (c - theta**2)
        if a <= 0 or disc < 0:
            raise ValueError(f"theta {theta} and gap {gap} cannot be planted together on these items")
        beta = min(((-b + r) / (2 * a) for r in (math.sqrt(disc), -math.sqrt(disc))), key=abs)
        effect = base + beta * w
        return self._model(Scenario(pairs, effect, *_truths(self.items, pairs, effect)), noise)

    def true_change(self, before: WinoBiasModel, after: WinoBiasModel) -> float:
        """theta^2 after minus before: the estimand the debiasing and regression gates compare."""
        return after.truth["a_sb"] ** 2 - before.truth["a_sb"] ** 2

    def follower(self, share: float, noise: str) -> StereotypedModel:
        sign = {"male": 1.0, "female": -1.0}
        p_first = []
        for it in self.items:
            a, b = it.candidates
            g = sign.get(it.gender, 0.0)
            stereo_a = float(g * _lean(a) > g * _lean(b)) if g else 0.5
            fair_a = ACCURACY if it.referent == a else 1 - ACCURACY
            p_first.append(share * stereo_a + (1 - share) * fair_a)
        p = np.array(p_first)
        pairs = tuple(self.pairing.usable(self.include_non_minimal))
        effect = np.array([p[q.male] - p[q.female] for q in pairs])
        o_sb, _, theta, gap = _truths(self.items, pairs, effect)
        return StereotypedModel(self.items, p, {"a_sb": theta, "rpa_gap": abs(gap),
                                                "worst_o_sb": max(abs(v) for v in o_sb.values())})

    def transfer(self, rho: float, noise: str, theta: float = 0.3, seed: int = 0) -> tuple[WinoBiasModel, WinoBiasModel, float]:
        """(bare model, prompted model, true rho): the bare one with the graded labour-statistics leans at true
        theta ``theta``; the prompted one with leans mixing the bare ones and the same leans in a seeded random
        order (made orthogonal to the bare ones), mixed so that the Pearson of the two true O-SB vectors over
        occupations, the true rho, is ``rho`` (bisection); its theta is ``theta``, or less where its pair
        effects would pass ``MAX_EFFECT`` (a reassigned lean cancels more within an occupation's pairs)."""
        pairs = tuple(self.pairing.usable(self.include_non_minimal))
        names = sorted({c for p in pairs for c in self.items[p.male].candidates})
        bare = np.array([_lean(n) for n in names])
        z = (bare - bare.mean()) / bare.std()
        other = np.random.default_rng(seed).permutation(z)
        other -= other.mean() + z * (other @ z) / (z @ z)
        other /= other.std()

        def effect_of(lean: np.ndarray) -> np.ndarray:
            where = dict(zip(names, lean))
            unit = np.array([(where[self.items[p.male].candidates[0]] - where[self.items[p.male].candidates[1]]) / 2 for p in pairs])
            effect = unit * theta / _truths(self.items, pairs, unit)[2]
            return effect * min(1.0, MAX_EFFECT / np.abs(effect).max())

        def true_rho(effect_x: np.ndarray, effect_y: np.ndarray) -> float:
            o_x, o_y = _truths(self.items, pairs, effect_x)[0], _truths(self.items, pairs, effect_y)[0]
            return float(np.corrcoef([o_x[n] for n in names], [o_y[n] for n in names])[0, 1])

        effect_x = effect_of(bare)
        lo, hi = -1.0, 1.0
        for _ in range(30):
            mix = (lo + hi) / 2
            effect_y = effect_of(mix * z + math.sqrt(1 - mix**2) * other)
            lo, hi = (mix, hi) if true_rho(effect_x, effect_y) < rho else (lo, mix)
        models = [self._model(Scenario(pairs, e, *_truths(self.items, pairs, e)), noise) for e in (effect_x, effect_y)]
        return models[0], models[1], true_rho(effect_x, effect_y)
