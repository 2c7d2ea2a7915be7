"""Family-wise error: how often a verdict over many gates fails a fair model, and corrections.

The gates' null is "the effect is within its limit" (effect <= threshold for a bias gate), the one a
fail rejects; ``holm`` over a gate's conditions turns the per-condition one-sided p-values of that null
into a family-wise fail (``AuditSession`` with ``correction = "holm"``).

A run with C conditions x G gates makes k = C x G decisions; if each wrongly fails a fair model with
probability alpha, the verdict "some gate failed" does so with probability up to 1 - (1 - alpha)^k
(independent gates) and at most k alpha (any dependence, Bonferroni). Two corrections keep it at alpha:

* ``holm``: step-down Holm (1979) adjusted p-values, valid under any dependence;
* ``max_t``: single-step max-T over conditions (Westfall & Young 1993) from resampled statistics
  that keep the dependence between conditions (the same resampled units / sign flips for
  every condition; a dataset's own, e.g. ``audit.datasets.winobias.selection.swap_max_t``), less conservative than Holm when conditions are correlated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (same order as given); reject where adjusted <= alpha."""
    p = np.asarray(p_values, float)
    if p.size == 0:
        return []
    order = np.argsort(p, kind="stable")
    m = p.size
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def beyond_p_from_interval(estimate: float, lo: float, hi: float, threshold: float, direction: str, confidence: float) -> float:
    """One-sided p-value of H0 "the effect is within the limit" read off a two-sided normal interval
    (se = the half-width on the threshold's side / z), for gates without an exact one; 1 when undefined."""
    from scipy import stats

    z = float(stats.norm.ppf(0.5 + confidence / 2))
    values = (estimate, lo, hi, threshold)
    if any(v is None or v != v for v in values):
        return 1.0
    if direction == "max":
        se, dist = (estimate - lo) / z, estimate - threshold
    else:
        se, dist = (hi - estimate) / z, threshold - estimate
    if se <= 0:
        return 0.0 if dist > 0 else 1.0
    return float(stats.norm.sf(dist / se))


def max_t(observed: Mapping[str, float], resampled: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """Single-step max-T adjusted p-values: for each condition c, P(max over conditions of T*_c' >= T_c),
    where ``resampled[c]`` are the null (or centred bootstrap) draws of condition c's statistic, the b-th
    draw of every condition coming from the same resample. Larger T = more evidence against H0."""
    names = list(observed)
    draws = np.column_stack([np.asarray(resampled[n], float) for n in names])
    if len({len(resampled[n]) for n in names}) != 1:
        raise ValueError("every condition needs the same number of resampled draws (one per common resample)")
    maxima = draws.max(axis=1)
    b = maxima.size
    return {n: float((1 + np.sum(maxima >= observed[n] - 1e-12)) / (1 + b)) for n in names}


@dataclass(frozen=True)
class FamilyWiseError:
    k: int
    alpha: float
    independent: float  # 1 - (1 - alpha)^k
    bound: float  # min(1, k alpha)
    per_gate_for_family: float  # Bonferroni level per gate that keeps the family at alpha

    def statement(self, correction: str = "none") -> str:
        """The verdict's error in words; ``correction`` the config's (``holm_verdict`` bounds the whole verdict)."""
        if correction == "holm_verdict":
            return (f"{self.k} gates: a fail must survive Holm's correction over every gate and condition of the verdict, "
                    f"so a model within every limit is failed with probability at most {self.alpha / 2:g} "
                    "(one-sided), whatever the dependence between the gates.")
        text = (
            f"{self.k} gates at level {self.alpha:g} each: a fair model fails at least one with probability up to "
            f"{self.independent:.1%} if the gates were independent, at most {self.bound:.1%} whatever their dependence; "
            f"testing each at {self.per_gate_for_family:.2g} (or Holm / max-T) keeps the verdict's error at {self.alpha:g}."
        )
        if correction == "holm":
            text += (f" With correction = holm each gate is corrected over its own conditions ({self.alpha / 2:g} per gate), "
                     "not over the gates: correction = holm_verdict bounds the whole verdict.")
        return text


def family_wise_error(k: int, alpha: float = 0.05) -> FamilyWiseError:
    """The verdict's family-wise error rate for ``k`` gates each at level ``alpha``."""
    if k < 0 or not 0 < alpha < 1:
        raise ValueError("k must be >= 0 and alpha in (0, 1)")
    return FamilyWiseError(k, alpha, 1 - (1 - alpha) ** k, min(1.0, k * alpha), alpha / k if k else alpha)


