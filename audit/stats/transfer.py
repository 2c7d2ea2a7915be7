"""Transfer of bias from the bare model to a prompted condition: the correlation of their per-unit bias
(each dataset's ``bias_by_unit``) over units, after Mackraz et al. 2024 and
Sivakumar, Mackraz et al. 2025 (who report Pearson)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Transfer:
    """Correlation of the bare model's per-unit bias with a prompted condition's over units (the papers report Pearson)."""

    pearson: float
    pearson_ci: tuple[float, float]
    spearman: float
    spearman_ci: tuple[float, float]
    p_value: float
    n: int

    def to_dict(self) -> dict:
        return {
            "pearson": self.pearson, "pearson_ci": list(self.pearson_ci), "spearman": self.spearman,
            "spearman_ci": list(self.spearman_ci), "p_value": self.p_value, "n": self.n,
        }


def _paired(intrinsic: Mapping[str, float | None], extrinsic: Mapping[str, float | None]) -> tuple[np.ndarray, np.ndarray]:
    keys = sorted(k for k in intrinsic if intrinsic[k] is not None and extrinsic.get(k) is not None)
    return np.array([intrinsic[k] for k in keys], float), np.array([extrinsic[k] for k in keys], float)


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r along the last axis (vectorised for the bootstrap); NaN where a row is constant."""
    xm = x - x.mean(axis=-1, keepdims=True)
    ym = y - y.mean(axis=-1, keepdims=True)
    denom = np.sqrt((xm**2).sum(axis=-1) * (ym**2).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (xm * ym).sum(axis=-1) / denom, np.nan)


def _spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return _pearson_rows(stats.rankdata(x, axis=-1), stats.rankdata(y, axis=-1))


def transfer_correlation(
    intrinsic: Mapping[str, float | None],
    extrinsic: Mapping[str, float | None],
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Transfer:
    """Pearson (primary, as Mackraz et al. 2024) and Spearman correlation of intrinsic vs extrinsic
    per-unit bias over the units measured in both, with the Pearson p-value and paired percentile
    bootstrap intervals over units (the same interval as ``scipy.stats.bootstrap(paired=True,
    method="percentile")``, computed here so that resamples with a constant side, whose correlation
    is undefined, can be dropped instead of turning the whole interval into NaN).

    A correlation is NaN when either side is constant (undefined); its interval is then (NaN, NaN).
    """
    x, y = _paired(intrinsic, extrinsic)
    n = len(x)
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        nan2 = (math.nan, math.nan)
        return Transfer(math.nan, nan2, math.nan, nan2, math.nan, n)
    pearson = stats.pearsonr(x, y)
    spearman = float(_spearman_rows(x, y))

    rng = np.random.default_rng(seed)
    resamples = rng.integers(0, n, size=(n_resamples, n))  # paired: units resampled with both values
    xb, yb = x[resamples], y[resamples]

    def interval(statistic: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> tuple[float, float]:
        values = statistic(xb, yb)
        values = values[~np.isnan(values)]  # a resample with a constant side has no correlation
        if values.size == 0:
            return (math.nan, math.nan)
        alpha = (1 - confidence) / 2
        lo, hi = np.quantile(values, [alpha, 1 - alpha])
        return (float(np.clip(lo, -1, 1)), float(np.clip(hi, -1, 1)))

    return Transfer(
        float(pearson.statistic), interval(_pearson_rows), spearman, interval(_spearman_rows), float(pearson.pvalue), n
    )
