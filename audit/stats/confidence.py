"""Generic confidence intervals: the ``Interval`` every statistic reports, and intervals for a mean, for an
absolute value, for a paired difference of binary outcomes, and for estimates repeated over seeds.

No percentile interval of an absolute value is used: ``abs_interval`` derives the interval of |g| from
one of g, which covers whenever the signed one does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Interval:
    """An estimate with its interval (``lo``, ``hi``) at ``confidence``; ``se`` on the estimate's scale."""

    estimate: float
    lo: float
    hi: float
    se: float
    confidence: float

    def contains(self, value: float) -> bool:
        return self.lo - 1e-12 <= value <= self.hi + 1e-12

    def to_dict(self) -> dict:
        return {"estimate": self.estimate, "ci": [self.lo, self.hi], "se": self.se, "confidence": self.confidence}


def _z(confidence: float) -> float:
    return float(stats.norm.ppf(0.5 + confidence / 2))


def mean_interval(values: np.ndarray, *, confidence: float = 0.95) -> Interval:
    """t interval for the mean of independent per-pair values (zero width when they are all equal)."""
    v = np.asarray(values, float)
    if v.size == 0:
        return Interval(math.nan, math.nan, math.nan, math.nan, confidence)
    mean = float(v.mean())
    se = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else math.nan
    if v.size < 2 or se == 0:
        return Interval(mean, mean, mean, 0.0 if v.size > 1 else math.nan, confidence)
    half = float(stats.t.ppf(0.5 + confidence / 2, v.size - 1)) * se
    return Interval(mean, mean - half, mean + half, se, confidence)


def abs_interval(signed: Interval) -> Interval:
    """Interval for |g| from one for g: covers |g| whenever [lo, hi] covers g (never a percentile of |.|)."""
    lo, hi = signed.lo, signed.hi
    if math.isnan(lo):
        return Interval(abs(signed.estimate), math.nan, math.nan, signed.se, signed.confidence)
    low = 0.0 if lo <= 0 <= hi else min(abs(lo), abs(hi))
    return Interval(abs(signed.estimate), low, max(abs(lo), abs(hi)), signed.se, signed.confidence)


def paired_difference_interval(values: np.ndarray, *, confidence: float = 0.95) -> Interval:
    """Interval for the mean of per-pair differences of two binary outcomes (values in {-1, 0, 1}):
    the Wald interval after adding 1/2 to each cell of the paired 2x2 table (Agresti & Min 2005), which
    keeps its coverage when few pairs disagree. The estimate is the plain mean. Zero width only when
    there are no pairs."""
    v = np.asarray(values, float)
    if v.size == 0:
        return Interval(math.nan, math.nan, math.nan, math.nan, confidence)
    if not np.all(np.isin(v, (-1.0, 0.0, 1.0))):
        raise ValueError("paired differences of binary outcomes must be -1, 0 or 1")
    n = v.size + 2
    up, down = (np.sum(v == 1) + 0.5) / n, (np.sum(v == -1) + 0.5) / n
    centre = up - down
    se = math.sqrt(max(up + down - centre**2, 0.0) / n)
    half = _z(confidence) * se
    return Interval(float(v.mean()), max(centre - half, -1.0), min(centre + half, 1.0), se, confidence)


def combine_seeds(estimates: Sequence[float], variances: Sequence[float], *, confidence: float = 0.95) -> Interval:
    """Seeds as their own level: the mean of per-seed estimates (each computed on its own, e.g. theta2 per
    seed), with variance = mean within-seed variance + between-seed variance / S. The within part is not
    divided by S because every seed sees the same items (their item noise is shared); the between part
    carries the seed-to-seed spread into the interval. One seed gives its own interval."""
    e, v = np.asarray(estimates, float), np.asarray(variances, float)
    if e.size == 0:
        return Interval(math.nan, math.nan, math.nan, math.nan, confidence)
    between = float(e.var(ddof=1)) / e.size if e.size > 1 else 0.0
    se = math.sqrt(float(v.mean()) + between)
    half = _z(confidence) * se
    mean = float(e.mean())
    return Interval(mean, mean - half, mean + half, se, confidence)
