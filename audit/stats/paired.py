"""Paired change of metrics between two conditions run on the same items (the debiasing table):
each resample draws the dataset's units (e.g. WinoBias twin pairs) once and takes them from both
conditions, so the interval of the difference reflects the pairing."""

from __future__ import annotations

import math
from typing import Callable, Hashable, Mapping, Sequence

import numpy as np


def _groups(items: Sequence, key: Callable[[object], Hashable]) -> dict[Hashable, list[int]]:
    out: dict[Hashable, list[int]] = {}
    for i, it in enumerate(items):
        out.setdefault(key(it), []).append(i)
    return out


def _num(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def paired_resample_change(
    before: tuple[Sequence, Sequence],
    after: tuple[Sequence, Sequence],
    metrics: Callable[[Sequence, Sequence], Mapping[str, float]],
    *,
    key: Callable[[object], Hashable],
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, dict]:
    """``{"overall": {name: {before, after, change, ci}}}`` for each metric ``metrics`` returns; change = after - before.
    A unit absent from one condition contributes nothing there. NaN resamples are dropped."""
    (ia, sa), (ib, sb) = before, after
    ga, gb = _groups(ia, key), _groups(ib, key)
    units = list(dict.fromkeys([*ga, *gb]))
    pa, pb = metrics(ia, sa), metrics(ib, sb)
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {m: [] for m in pa}
    for _ in range(n_resamples):
        chosen = [units[j] for j in rng.integers(0, len(units), len(units))]
        xa = [i for u in chosen for i in ga.get(u, ())]
        xb = [i for u in chosen for i in gb.get(u, ())]
        ma = metrics([ia[i] for i in xa], [sa[i] for i in xa])
        mb = metrics([ib[i] for i in xb], [sb[i] for i in xb])
        for m in draws:
            d = mb.get(m, math.nan) - ma.get(m, math.nan)
            if not math.isnan(d):
                draws[m].append(d)
    alpha = (1 - confidence) / 2
    out = {}
    for m in pa:
        ci = [float(v) for v in np.quantile(draws[m], [alpha, 1 - alpha])] if draws[m] else [None, None]
        change = pb.get(m, math.nan) - pa[m]
        out[m] = {"before": _num(pa[m]), "after": _num(pb.get(m, math.nan)), "change": _num(change), "ci": ci}
    return {"overall": out}
