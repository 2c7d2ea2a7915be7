"""Simultaneous intervals for the BBQ scores of every category, and the bound they give on the worst one.

The bbq_s_amb / bbq_s_dis gates read max over categories of |s_c|. A percentile interval of that maximum
does not cover it (at a true 0 in every category the bootstrap maximum sits above 0 in every resample,
so its interval never holds 0). Instead: max-T over categories. With ``s*_c`` a bootstrap replicate of
category c's score and ``se_c`` its bootstrap standard deviation, ``crit`` is the ``confidence`` quantile
of ``max_c |s*_c - s_c| / se_c``, and category c's interval is ``s_c +- crit * se_c``. All of them hold
at once with probability ``confidence``; when they do,

* ``lower`` = max_c of the distance from 0 of the intervals that exclude 0, and
* ``upper`` = max_c of the larger |end|

bracket the worst |s_c|. So a gate that fails only when ``lower`` is above its limit fails a model whose
every category is within it in at most ``1 - confidence`` of runs, whatever the number of categories.

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


@dataclass(frozen=True)
class WorstCategory:
    category: str | None  # the category with the largest |estimate|
    estimate: float  # max_c |s_c|
    lower: float
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
    lows, highs = [], []
    for c in np.flatnonzero(keep):
        half = crit * se[c] if se[c] > 0 else 0.0
        lo, hi = float(point[c] - half), float(point[c] + half)
        intervals[names[c]] = (lo, hi)
        lows.append(abs_bounds(lo, hi)[0])
        highs.append(abs(float(point[c])) + (marginal[c] * se[c] if se[c] > 0 else 0.0))
    est = np.abs(point[keep])
    worst = names[int(np.flatnonzero(keep)[int(np.argmax(est))])]
    return WorstCategory(worst, float(est.max()), float(max(lows)), float(max(highs)), crit, intervals)
