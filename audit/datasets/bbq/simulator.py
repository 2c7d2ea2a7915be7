"""BBQ models of known truth for ``bias-audit calibrate`` (``audit.run.calibrate.Simulator``): the
choosers of :mod:`.simulate` (fair errors fall on either person alike; stereotype use planted in one
category, by bisection, so that the category's true score is the requested value). By default a bias is
planted in the smallest audited category, where it is hardest to detect: the power printed is the worst
case. ``plant="every"`` plants it in every category at once, each at the requested value (the typical
case of a model that uses stereotypes throughout)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .simulate import Chooser, choose, planted_at, truth
from .transfer import design_weighted_bias

ACCURACY = {"low": (0.95, 0.90), "high": (0.75, 0.60)}  # (disambiguated, ambiguous) accuracy of the fair part
METRIC = {"bbq_s_amb": "s_amb", "bbq_s_dis": "s_dis"}


@dataclass
class BBQModel:
    probs: np.ndarray
    truth: dict[str, float]

    def answer(self, rng: np.random.Generator) -> list:
        return [int(v) for v in choose(self.probs, rng)]


class BBQSimulator:
    gates = ("bbq_s_amb", "bbq_s_dis")
    @property
    def noise_levels(self) -> dict[str, str]:
        return {k: f"accuracy {d} in disambiguated and {a} in ambiguous contexts" for k, (d, a) in ACCURACY.items()}

    def __init__(self, items: Sequence, plant: str = "smallest"):
        if plant not in ("smallest", "every"):
            raise ValueError(f"plant: expected 'smallest' or 'every', not {plant!r}")
        self.items, self.plant = list(items), plant
        sizes: dict[str, int] = {}
        for it in self.items:
            sizes[it.category] = sizes.get(it.category, 0) + 1
        self.category = min(sizes, key=lambda c: (sizes[c], c))
        if plant == "every":
            self.planted_items = len(self.items)
            self.planted_where = f"every category at once, each at the planted value ({len(sizes)} categories, {len(self.items)} items)"
        else:
            self.planted_items = sizes[self.category]
            self.planted_where = f"the smallest category, {self.category} ({sizes[self.category]} of {len(self.items)} items)"

    def _model(self, chooser: Chooser) -> BBQModel:
        probs = chooser.probabilities(self.items)
        true = truth(self.items, probs)
        return BBQModel(probs, {g: max(abs(v) for v in true[m].values()) for g, m in METRIC.items()})

    def _base(self, noise: str) -> Chooser:
        dis, amb = ACCURACY[noise]
        return Chooser(acc_dis=dis, acc_amb=amb)

    def fair(self, noise: str) -> BBQModel:
        return self._model(self._base(noise))

    def planted(self, gate: str, value: float, noise: str) -> BBQModel:
        if gate not in METRIC:
            raise ValueError(f"gate '{gate}' cannot be planted in a BBQ simulation")
        base, use = self._base(noise), []
        for category in sorted({it.category for it in self.items}) if self.plant == "every" else [self.category]:
            own = [it for it in self.items if it.category == category]  # a category's score is its items' alone
            use += planted_at(own, METRIC[gate], category, value, base).stereotype
        model = self._model(Chooser(base.acc_dis, base.acc_amb, tuple(use)))
        if abs(model.truth[gate] - value) > 1e-3:  # the planted value is out of reach at this accuracy
            raise ValueError(f"{gate} = {value:.3f} is not reachable in {self.category}")
        return model

    def true_change(self, before: BBQModel, after: BBQModel) -> float:
        """theta^2 of the design-weighted per-template selection bias after minus before (``.debiasing``, the
        estimand the debiasing gate compares), from the choosers' expected picks."""
        from .debiasing import true_theta2

        return true_theta2(self.items, after.probs) - true_theta2(self.items, before.probs)

    def follower(self, share: float, noise: str) -> BBQModel:
        """The biased answer with probability ``share`` in every category."""
        base = self._base(noise)
        categories = sorted({it.category for it in self.items})
        return self._model(Chooser(base.acc_dis, base.acc_amb, tuple((c, share) for c in categories)))

    def transfer(self, rho: float, noise: str, seed: int = 0) -> tuple[BBQModel, BBQModel, float]:
        """(bare model, prompted model, true rho over templates): the bare model uses stereotypes in each
        category at a graded rate (0.05 to 0.4); the prompted one at rates mixing the bare ones and the same
        rates in a seeded random order (made orthogonal), shifted to be >= 0, mixed so that the Pearson of the
        two true design-weighted per-template selection biases (``.transfer``), the true rho, is ``rho`` (bisection)."""
        cats = sorted({it.category for it in self.items})
        bare = np.linspace(0.05, 0.4, len(cats))
        z = (bare - bare.mean()) / bare.std()
        other = np.random.default_rng(seed).permutation(z)
        other -= other.mean() + z * (other @ z) / (z @ z)
        other /= other.std()
        base = self._base(noise)

        def chooser(rates: np.ndarray) -> Chooser:
            rates = rates - min(rates.min(), 0.0)
            rates = rates * min(1.0, 0.4 / rates.max())
            return Chooser(base.acc_dis, base.acc_amb, tuple(zip(cats, (float(r) for r in rates))))

        def per_template(c: Chooser) -> np.ndarray:  # the corrected transfer's estimand, from expected picks
            probs = c.probabilities(self.items)
            picks = [p[it.stereotyped_index] if it.stereotyped_index is not None else 0.0 for it, p in zip(self.items, probs)]
            return np.array(list(design_weighted_bias(self.items, picks).values()))

        x = chooser(bare)
        bx = per_template(x)
        lo, hi = -1.0, 1.0
        for _ in range(20):
            mix = (lo + hi) / 2
            y = chooser(mix * z + math.sqrt(1 - mix**2) * other)
            lo, hi = (mix, hi) if np.corrcoef(bx, per_template(y))[0, 1] < rho else (lo, mix)
        return self._model(x), self._model(y), float(np.corrcoef(bx, per_template(y))[0, 1])
