"""Simultaneous intervals for the BBQ scores of every category, and the bound they give on the worst one.

The bbq_s_amb / bbq_s_dis gates read max over categories of |s_c|. A percentile interval of that maximum
does not cover it (at a true 0 in every category the bootstrap maximum sits above 0 in every resample,
so its interval never holds 0). Instead: max-T over categories. With ``s*_c`` a bootstrap replicate of
category c's score and ``se_c`` its bootstrap standard deviation, ``crit`` is the ``confidence`` quantile
of ``max_c |s*_c - s_c| / se_c``, and category c's interval is ``s_c +- crit * se_c``. All of them hold
at once with probability ``confidence``; when they do,

* max_c of the distance from 0 of the intervals that exclude 0, and
* max_c of the larger |end|

bracket the worst |s_c| (the single-step bound). Its lower end is conservative when the categories
differ: a category far inside the limit cannot produce a false fail, yet it widens every interval as much
as one at the limit. ``lower`` is therefore the two-step bound of Romano, Shaikh & Wolf (2014, "A
practical two-step method for testing moment inequalities", Econometrica 82), inverted over t. Test of
H0(t) "every |s_c| <= t", with m_c = (|s_c| - t) / se_c and the same bootstrap |s*_c - s_c| / se_c:

1. step 1, level beta (``BETA_SHARE`` x (1 - confidence)): k = the 1 - beta quantile of the max-T
   statistic; a category whose upper bound |s_c| + k se_c is below t is shown inside the limit by
   shift_c = m_c + k < 0 standard errors (else shift_c = 0);
2. step 2: reject when max_c m_c exceeds the 1 - (1 - confidence) + beta quantile of
   max_c (|s*_c - s_c| / se_c + shift_c), so a category shown inside barely enters the critical value.

``lower`` = inf{t >= 0: H0(t) not rejected}; it exceeds the true worst |s| only when H0 at that value is
rejected, which (RSW, Theorem 3.1) happens with probability at most 1 - confidence (step 1's beta
included), the bound the single-step lower end has; as there, only one side of each |s_c| can err
upward, so about half of it in practice. When every category is near the limit nothing is shifted and
the critical value is the single-step one to within 0.01 standard errors; when one category stands out
it is close to that category's own (about 2.0 instead of 2.6 standard errors for six categories). A
gate that fails only when ``lower`` is above its limit keeps that error, whatever the number of
categories. ``intervals`` and ``critical`` stay the single-step simultaneous intervals (reported).

The upper end needs no simultaneity (an intersection-union argument, Berger 1982): "every category is
within the limit" holds when each one is, and the true worst category c* alone decides whether
``upper`` < max_c |s_c|, so ``upper`` = max_c of the larger |end| of each category's *own* (marginal)
interval, s_c +- crit_c se_c with crit_c the ``confidence`` quantile of |s*_c - s_c| / se_c, falls
below the true worst |s| in at most (1 - confidence) / 2 of runs. [lower, upper] still holds the worst
|s| with probability >= ``confidence``; a fair model is shown within the limit far more often than with
the simultaneous upper end (which needed every category's interval widened by max-T).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


BETA_SHARE = 0.02  # step 1's level, as a share of 1 - confidence: small, so step 2's critical value is the
# single-step one to within 0.01 standard errors when every category is near the limit


@dataclass(frozen=True)
class WorstCategory:
    category: str | None  # the category with the largest |estimate|
    estimate: float  # max_c |s_c|
    lower: float  # the two-step (Romano-Shaikh-Wolf) lower confidence bound
    upper: float  # from each category's marginal interval (intersection-union: no simultaneity needed)
    critical: float  # the max-T critical value (in bootstrap standard errors)
    intervals: dict[str, tuple[float, float]]  # simultaneous interval of each category's signed score


def abs_bounds(lo: float, hi: float) -> tuple[float, float]:
    """The interval of |s| implied by an interval [lo, hi] of s."""
    return max(lo, -hi, 0.0), max(abs(lo), abs(hi))


def worst_category(names: list[str], point: np.ndarray, boot: np.ndarray, confidence: float) -> WorstCategory:
    """``point``: (C,) signed scores; ``boot``: (R, C) their bootstrap replicates (NaN where undefined)."""
    point = np.asarray(point, float)
    keep = ~np.isnan(point)
    if not keep.any():
        return WorstCategory(None, math.nan, math.nan, math.nan, math.nan, {})
    with np.errstate(invalid="ignore"):
        se = np.nanstd(boot, axis=0, ddof=1) if boot.shape[0] > 1 else np.zeros_like(point)
    se = np.where(np.isnan(se), 0.0, se)
    scaled = keep & (se > 0)
    if scaled.any():
        with np.errstate(invalid="ignore", divide="ignore"):
            dev = np.abs(boot[:, scaled] - point[scaled]) / se[scaled]
        worst_dev = np.nanmax(np.where(np.isnan(dev), -np.inf, dev), axis=1)
        worst_dev = worst_dev[np.isfinite(worst_dev)]
        crit = float(np.quantile(worst_dev, confidence)) if worst_dev.size else math.nan
        marginal = np.zeros_like(point)
        marginal[scaled] = [float(np.nanquantile(d, confidence)) if np.isfinite(d).any() else crit for d in dev.T]
    else:
        crit, marginal = 0.0, np.zeros_like(point)
    intervals: dict[str, tuple[float, float]] = {}
    highs = []
    for c in np.flatnonzero(keep):
        half = crit * se[c] if se[c] > 0 else 0.0
        lo, hi = float(point[c] - half), float(point[c] + half)
        intervals[names[c]] = (lo, hi)
        highs.append(abs(float(point[c])) + (marginal[c] * se[c] if se[c] > 0 else 0.0))
    est = np.abs(point[keep])
    worst = names[int(np.flatnonzero(keep)[int(np.argmax(est))])]
    exact = keep & ~scaled  # no spread over resamples: the estimate is its own bound
    lower = float(np.abs(point[exact]).max()) if exact.any() else 0.0
    if scaled.any():
        lower = max(lower, two_step_lower(np.abs(point[scaled]), se[scaled], dev, 1 - confidence))
    return WorstCategory(worst, float(est.max()), lower, float(max(highs)), crit, intervals)


def two_step_lower(size: np.ndarray, se: np.ndarray, dev: np.ndarray, alpha: float, beta_share: float = BETA_SHARE) -> float:
    """inf{t >= 0: the two-step test of "every |s_c| <= t" does not reject} (module docstring). ``size``,
    ``se``: (K,) the categories' |s_c| and standard errors (> 0); ``dev``: (R, K) the bootstrap |s*_c - s_c| / se_c
    (NaN where undefined); ``alpha`` = 1 - confidence, as for the single-step max-T."""
    d = np.where(np.isnan(dev), -np.inf, dev)
    d = d[np.isfinite(d.max(axis=1))]
    if not len(d):
        return 0.0
    beta = beta_share * alpha
    step1 = float(np.quantile(d.max(axis=1), 1 - beta))

    def rejects(t: float) -> bool:
        m = (size - t) / se  # each category's |s| - t in its own standard errors
        shift = np.minimum(m + step1, 0.0)  # how far step 1 shows it below t (0: it may be at or beyond t)
        return bool(m.max() > np.quantile((d + shift).max(axis=1), 1 - alpha + beta))

    if not rejects(0.0):
        return 0.0
    top = float(size.max())  # no category's estimate is beyond it: never rejected
    lo, hi = 0.0, top
    for t in np.linspace(0.0, top, 17)[1:]:  # the first t not rejected (a grid, then bisection)
        if not rejects(float(t)):
            hi = float(t)
            break
        lo = float(t)
    for _ in range(24):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if rejects(mid) else (lo, mid)
    return hi
