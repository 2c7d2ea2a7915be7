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

import math
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


@dataclass(frozen=True)
class TwoStep:
    rejected: list[bool]  # per decision, in the order given: shown beyond its limit
    critical: float  # the last step's critical value (z scale) for the decisions not rejected
    discounted: int  # decisions shown far within their limits in step 1 (shift < 0)
    z: list[float]  # each decision's z = Phi^-1(1 - p)


def two_step(p_values: Sequence[float], alpha: float, beta_share: float = 0.1) -> TwoStep:
    """Which decisions are shown beyond their limits, family-wise at ``alpha``, discounting those shown far within.

    Holm treats every decision as if it sat at its limit; in a study of 29 conditions most decisions sit far
    inside theirs, and Holm's bar (alpha / 122 for the study's 122 decisions) then hides a bias confined to one
    condition. This is the two-step test of moment inequalities of Romano, Shaikh & Wolf (2014, "A practical
    two-step method for testing moment inequalities", Econometrica 82), with union (Bonferroni) bounds in
    place of the bootstrap distribution of the maximum, so it needs no joint distribution of the decisions
    and holds under any dependence between them. With z_j = Phi^-1(1 - p_j) (p_j: decision j's one-sided p
    of H0 "within the limit"; the z-distance of its estimate beyond the limit in standard errors):

    1. at level beta = ``beta_share`` x alpha, k = Phi^-1(1 - beta / m) bounds every decision's distance at
       once: decision j lies at most z_j + k standard errors beyond its limit, so it is shown within by
       shift_j = min(z_j + k, 0) <= 0;
    2. step-down over the decisions not yet rejected: the critical value c solves
       sum_j P(N(0, 1) > c - shift_j) = alpha - beta; every decision with z_j > c is rejected; repeat until
       none is added. With no shift this is Holm at alpha - beta; a decision shown far within barely counts.

    Validity (strong family-wise control, any dependence): with probability >= 1 - beta step 1's bounds all
    hold, and then each true null's shift is at least its true standardised distance (and a false null's is
    0), so c is at least the critical value of the true nulls' own, non-random shifts; by the union bound
    those are crossed with probability <= alpha - beta; step-down keeps it because c only grows with the
    set it is computed over (Romano & Wolf 2005). Approximate where z_j is (a normal pivot), as the
    intervals the p-values come from are."""
    from scipy import stats

    p = np.clip(np.asarray(p_values, float), 0.0, 1.0)
    m = p.size
    if m == 0:
        return TwoStep([], math.inf, 0, [])
    z = stats.norm.isf(p)  # +inf at p = 0, -inf at p = 1
    beta = beta_share * alpha
    shift = np.minimum(z + stats.norm.isf(beta / m), 0.0)
    rejected = np.zeros(m, bool)
    while True:
        crit = _union_critical(shift[~rejected], alpha - beta)
        new = ~rejected & (z > crit)
        if not new.any():
            break
        rejected |= new
    return TwoStep(rejected.tolist(), crit, int((shift[np.isfinite(shift)] < 0).sum() + (~np.isfinite(shift)).sum()),
                   z.tolist())


def _union_critical(shift: np.ndarray, level: float) -> float:
    """c with sum_j P(N(0, 1) > c - shift_j) = level (inf when no decision can be crossed)."""
    from scipy import optimize, stats

    shift = shift[np.isfinite(shift)]
    if shift.size == 0:
        return math.inf

    def excess(c: float) -> float:
        return float(stats.norm.sf(c - shift).sum()) - level

    hi = float(stats.norm.isf(level / shift.size))  # every shift 0: Bonferroni; shifts only lower it
    lo = float(stats.norm.isf(level)) + float(shift.max())  # the largest term alone reaches the level
    if excess(hi) >= 0:
        return hi
    return float(optimize.brentq(excess, lo, hi, xtol=1e-10)) if excess(lo) > 0 else lo


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
        """The verdict's error in words; ``correction`` the config's (``holm_verdict`` and ``two_step_verdict`` bound
        the whole verdict)."""
        if correction in ("holm_verdict", "two_step_verdict"):
            how = ("Holm's correction" if correction == "holm_verdict" else
                   "the two-step test (Holm's step-down, discounting decisions shown far within their limits)")
            return (f"{self.k} gates: a fail must survive {how} over every gate and condition of the verdict, "
                    f"so a model within every limit is failed with probability at most {self.alpha / 2:g} "
                    "(one-sided), whatever the dependence between the gates.")
        text = (
            f"{self.k} gates at level {self.alpha:g} each: a fair model fails at least one with probability up to "
            f"{self.independent:.1%} if the gates were independent, at most {self.bound:.1%} whatever their dependence; "
            f"testing each at {self.per_gate_for_family:.2g} (or Holm / max-T) keeps the verdict's error at {self.alpha:g}."
        )
        if correction == "holm":
            text += (f" With correction = holm each gate is corrected over its own conditions ({self.alpha / 2:g} per gate), "
                     "not over the gates: correction = two_step_verdict or holm_verdict bounds the whole verdict.")
        return text


def family_wise_error(k: int, alpha: float = 0.05) -> FamilyWiseError:
    """The verdict's family-wise error rate for ``k`` gates each at level ``alpha``."""
    if k < 0 or not 0 < alpha < 1:
        raise ValueError("k must be >= 0 and alpha in (0, 1)")
    return FamilyWiseError(k, alpha, 1 - (1 - alpha) ** k, min(1.0, k * alpha), alpha / k if k else alpha)


