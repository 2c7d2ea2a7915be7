"""Resampling tools shared by every dataset's statistics: bootstrap counts, exact sign-flip expectations.

* ``bootstrap_weights``: how often each unit appears in each resample (a paired bootstrap draws the
  same units in both conditions by using the same weights);
* ``expected_abs_rademacher_sum`` and ``sign_flip_noise_floor``: the exact expected |sum| (|mean|) of
  per-unit values in {-1, 0, 1} when each unit's sign is flipped at random (the null of a paired design
  in which the two members of a unit are exchangeable);
* ``signed_sqrt``: the square root that keeps the sign (an unbiased squared effect may be negative).
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import numpy as np


def bootstrap_weights(n: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, n) counts of each of n units in a resample with replacement (a paired bootstrap)."""
    idx = rng.integers(0, n, size=(resamples, n)) + n * np.arange(resamples)[:, None]
    return np.bincount(idx.ravel(), minlength=resamples * n).reshape(resamples, n).astype(float)


@functools.lru_cache(maxsize=4096)
def expected_abs_rademacher_sum(k: int) -> float:
    """E|e_1 + ... + e_k| for independent fair signs e_i: k * C(k-1, floor((k-1)/2)) / 2^(k-1) (exact)."""
    if k <= 0:
        return 0.0
    return k * math.comb(k - 1, (k - 1) // 2) / 2 ** (k - 1)


def sign_flip_noise_floor(values: Sequence[float]) -> float:
    """Expected |mean| of per-unit values in {-1, 0, 1} when each unit's sign is flipped at random (exact)."""
    k = sum(1 for v in values if v != 0)
    return expected_abs_rademacher_sum(k) / len(values) if len(values) else math.nan


def signed_sqrt(v: float) -> float:
    return math.copysign(math.sqrt(abs(v)), v)


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """The percentile interval at ``confidence`` of resampled ``values`` (NaN replicates dropped); (nan, nan)
    when none is left."""
    v = values[~np.isnan(values)]
    if v.size == 0:
        return (float("nan"), float("nan"))
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(v, [alpha, 1 - alpha])
    return (float(lo), float(hi))
