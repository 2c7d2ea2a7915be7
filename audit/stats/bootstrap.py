"""Bootstrap intervals that resample the design's unit (e.g. gender-swapped twin pairs), not single items."""

from __future__ import annotations

import math
from typing import Callable, Hashable, Sequence

import numpy as np


def bootstrap_interval(
    items: Sequence,
    selections: Sequence,
    statistic: Callable[[Sequence, Sequence], float],
    *,
    key: Callable[[object], Hashable],
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of an item-level ``statistic`` (e.g. a mean bias or an accuracy gap).

    The resampling unit is the dataset's pair (``key``; WinoBias: the gender-swapped twin pair), not the
    single item: a twin pair is the design's unit of comparison, and resampling single items would break
    the pairs and make even a perfectly fair model look biased. NaN resamples (an empty stratum) are dropped.
    """
    if len(items) != len(selections):
        raise ValueError(f"{len(items)} items but {len(selections)} selections")
    if not items:
        return (math.nan, math.nan)
    clusters: dict[Hashable, list[int]] = {}
    for i, item in enumerate(items):
        clusters.setdefault(key(item), []).append(i)
    groups = list(clusters.values())
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        idx = [i for g in rng.integers(0, len(groups), len(groups)) for i in groups[g]]
        v = statistic([items[i] for i in idx], [selections[i] for i in idx])
        if not math.isnan(v):
            values.append(v)
    if not values:
        return (math.nan, math.nan)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(values, [alpha, 1 - alpha])
    return (float(lo), float(hi))


def bootstrap_sums_interval(
    columns: np.ndarray,
    groups: Sequence[Hashable],
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """``bootstrap_interval`` for a statistic of column sums (e.g. a difference of two accuracies), vectorised:
    ``columns`` (items x k), ``groups`` each item's resampling unit, ``statistic`` maps (resamples x k) sums
    to values (NaN dropped). The same draws as ``bootstrap_interval`` with the same seed, so the same interval."""
    cols = np.asarray(columns, float)
    if cols.shape[0] == 0:
        return (math.nan, math.nan)
    order: dict[Hashable, int] = {}
    index = np.array([order.setdefault(g, len(order)) for g in groups])
    sums = np.zeros((len(order), cols.shape[1]))
    np.add.at(sums, index, cols)
    rng = np.random.default_rng(seed)
    values = np.empty(n_resamples)
    for start in range(0, n_resamples, 256):  # the draws of bootstrap_interval, row by row
        draws = rng.integers(0, len(order), size=(min(256, n_resamples - start), len(order)))
        values[start:start + len(draws)] = statistic(sums[draws].sum(axis=1))
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (math.nan, math.nan)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(values, [alpha, 1 - alpha])
    return (float(lo), float(hi))


def paired_mean_change(
    differences: Sequence[float],
    clusters: Sequence[object] | None = None,
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, tuple[float, float]]:
    """Mean of paired differences (e.g. new minus old |bias| per unit) with a percentile
    bootstrap interval; ``clusters`` resamples groups of differences together (e.g. gender twins)."""
    d = np.asarray(differences, float)
    if d.size == 0:
        return math.nan, (math.nan, math.nan)
    keys = list(range(d.size)) if clusters is None else list(clusters)
    groups: dict[object, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    sums = np.array([d[g].sum() for g in groups.values()])
    sizes = np.array([len(g) for g in groups.values()], float)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(sums), size=(n_resamples, len(sums)))
    means = sums[draws].sum(axis=1) / sizes[draws].sum(axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return float(d.mean()), (float(lo), float(hi))
