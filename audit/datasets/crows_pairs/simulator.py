"""CrowS-Pairs models of known truth for ``bias-audit calibrate`` (``audit.run.calibrate.Simulator``).

A simulated model prefers ``sent_more`` in pair i with a known probability p_i and leaves a pair unanswered
(a tie, or a generation naming neither sentence) with a known probability; a bias type's true stereotype
preference is the mean of its pairs' p_i, and the gate's truth is the largest |preference - 0.5| over the
types (Nangia et al. 2020's metric score, centred). Noise levels:

* ``low``: every pair answered, every pair of a type at the type's preference;
* ``high``: a fifth of the pairs unanswered, and pairs leaning +-0.3 around the type's preference (half
  each way within every type, so the type's mean is unchanged): strong per-pair leanings that cancel.

A bias is planted in the smallest bias type by default (the hardest to detect: the power printed is the
worst case), or in every type at once (``plant="every"``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .items import LESS, MORE, CrowsPair

GATE = "crows_pairs_bias"
SPREAD = {"low": 0.0, "high": 0.3}  # per-pair lean around the type's preference
UNANSWERED = {"low": 0.0, "high": 0.2}  # share of pairs left unanswered
TRANSFER_RANGE = (0.05, 0.4)  # the bare model's |preference - 0.5| over the types, graded


@dataclass
class CrowsModel:
    more: np.ndarray  # P(sent_more) per item
    unanswered: float
    truth: dict[str, float]

    def answer(self, rng: np.random.Generator) -> list:
        pick, gone = rng.random(len(self.more)), rng.random(len(self.more)) < self.unanswered
        return [None if g else (MORE if u < p else LESS) for u, p, g in zip(pick, self.more, gone)]


class CrowsSimulator:
    gates = (GATE,)

    @property
    def noise_levels(self) -> dict[str, str]:
        return {k: (f"{UNANSWERED[k]:.0%} of pairs unanswered, pairs leaning +-{SPREAD[k]:g} around their type's "
                    f"preference" if SPREAD[k] else "every pair answered, at its type's preference") for k in SPREAD}

    def __init__(self, items: Sequence[CrowsPair], plant: str = "smallest"):
        if plant not in ("smallest", "every"):
            raise ValueError(f"plant: expected 'smallest' or 'every', not {plant!r}")
        self.items, self.plant = list(items), plant
        self.types = list(dict.fromkeys(it.bias_type for it in self.items))  # the audited items: one per pair
        self._type = np.array([self.types.index(it.bias_type) for it in self.items])
        pairs = np.bincount(self._type, minlength=len(self.types))
        self.smallest = min(self.types, key=lambda t: (pairs[self.types.index(t)], t))
        # +1 / -1 alternating within every type, so half lean each way; 0 for the odd one out of an odd type
        self._sign = np.zeros(len(self.items))
        for t in range(len(self.types)):
            at = np.flatnonzero(self._type == t)
            self._sign[at[: len(at) // 2 * 2]] = np.resize([1.0, -1.0], len(at) // 2 * 2)
        if plant == "every":
            self.planted_items = len(self.items)
            self.planted_where = f"every bias type at once, each at the planted value ({len(self.types)} types, {len(self.items)} pairs)"
        else:
            self.planted_items = int(pairs[self.types.index(self.smallest)])
            self.planted_where = f"the smallest bias type, {self.smallest} ({self.planted_items} of {len(self.items)} pairs)"

    def _model(self, preference: Sequence[float], noise: str) -> CrowsModel:
        """Pairs of type t prefer sent_more with mean probability ``preference[t]``."""
        pref = np.asarray(preference, dtype=float)
        spread = min(SPREAD[noise], float(np.min(np.minimum(pref, 1 - pref))))  # stays a probability
        more = pref[self._type] + spread * self._sign
        truth = {GATE: float(max(abs(self._mean(more, t) - 0.5) for t in range(len(self.types))))}
        return CrowsModel(more, UNANSWERED[noise], truth)

    def _mean(self, more: np.ndarray, t: int) -> float:
        """A type's true preference: the mean over its pairs."""
        return float(more[self._type == t].mean())

    def fair(self, noise: str) -> CrowsModel:
        return self._model([0.5] * len(self.types), noise)

    def planted(self, gate: str, value: float, noise: str) -> CrowsModel:
        if gate != GATE:
            raise ValueError(f"gate '{gate}' cannot be planted in a CrowS-Pairs simulation")
        if not 0 <= value <= 0.5:
            raise ValueError(f"{gate} = {value:.3f} is not a deviation of a preference from 0.5")
        planted = set(self.types) if self.plant == "every" else {self.smallest}
        return self._model([0.5 + value if t in planted else 0.5 for t in self.types], noise)

    def follower(self, share: float, noise: str) -> CrowsModel:
        """sent_more with probability ``share`` in every pair (no per-pair spread)."""
        return CrowsModel(np.full(len(self.items), float(share)), UNANSWERED[noise], {GATE: abs(share - 0.5)})

    def true_change(self, before: CrowsModel, after: CrowsModel) -> float:
        """The mean over bias types of |preference - 0.5| after minus before (the debiasing gate's estimand)."""
        def deviation(m: CrowsModel) -> float:
            return float(np.mean([abs(self._mean(m.more, t) - 0.5) for t in range(len(self.types))]))

        return deviation(after) - deviation(before)

    def transfer(self, rho: float, noise: str, seed: int = 0) -> tuple[CrowsModel, CrowsModel, float]:
        """(bare model, prompted model, true rho over the bias types): the bare model's preference - 0.5 is graded
        over the types (0.05 to 0.4); the prompted one's mixes the bare deviations with the same values in a seeded
        order made orthogonal, shifted to be >= 0 and scaled to at most 0.4, so that the Pearson of the two true
        per-type deviations (the transfer gate's units) is ``rho`` (bisection)."""
        n = len(self.types)
        bare = np.linspace(*TRANSFER_RANGE, n)
        z = (bare - bare.mean()) / bare.std()
        other = np.random.default_rng(seed).permutation(z)
        other -= other.mean() + z * (other @ z) / (z @ z)
        other /= other.std()

        def deviations(mix: float) -> np.ndarray:
            d = mix * z + math.sqrt(1 - mix**2) * other
            d = d - min(d.min(), 0.0)
            return d * min(1.0, TRANSFER_RANGE[1] / d.max())

        lo, hi = -1.0, 1.0
        for _ in range(30):
            mix = (lo + hi) / 2
            lo, hi = (mix, hi) if np.corrcoef(bare, deviations(mix))[0, 1] < rho else (lo, mix)
        prompted = deviations((lo + hi) / 2)
        x, y = self._model(0.5 + bare, noise), self._model(0.5 + prompted, noise)
        true = [np.array([self._mean(m.more, t) for t in range(n)]) for m in (x, y)]
        return x, y, float(np.corrcoef(*true)[0, 1])
