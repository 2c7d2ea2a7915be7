"""Calibrated intervals for the gated statistics (coverage measured in tests/test_stats_simulation.py).

No percentile interval of an absolute value or of a maximum is used anywhere here: such intervals
are centred above the truth (resampling adds a second layer of noise to |.|), which is what made the
old A-SB interval exclude its own estimate.

* ``debiased_interval``: theta^2 (``selection.debiased_effect``) is a sum of U-statistics over twin
  pairs; its variance is estimated from the Hoeffding decomposition (a linear term over pairs, with
  occupations that share a pair correlated, plus the degenerate quadratic term that dominates near
  zero), each part estimated without bias; a normal interval for theta^2 mapped through the signed
  square root to the A-SB scale.
* ``gap_interval``: the RPA gap is a mean over pairs; t interval for the signed gap, and from it an
  interval for |gap| that covers whenever the signed one does.
* ``worst_o_sb_bound``: simultaneous (max-T, paired bootstrap over twin pairs) intervals for every
  O-SB; the largest |end| bounds the worst |O-SB| with family-wise coverage.
* ``combine_seed_tables``: seeds as their own level (each pair's answers averaged over seeds, then theta);
  ``combine_seeds``: the mean of per-seed estimates (for the transfer over seeds).
* ``paired_change``: candidate minus approved run on theta^2, resampling twin pairs jointly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy import stats

from audit.stats.confidence import Interval, _z, abs_interval, combine_seeds, mean_interval, paired_difference_interval  # noqa: F401
from audit.stats.resampling import bootstrap_weights, signed_sqrt

from .selection import PairTable, debiased_effect, occupation_sums, u_statistics


def debiased_variance(t: PairTable) -> float:
    """Estimated Var(theta^2-hat) = linear part + quadratic part (each estimated without first-order bias).

    theta^2-hat = (1/K) sum_o U_o. Linear part: sum over pairs j of (2/K)^2 Var(x_j) g_j^2 with
    g_j = delta_a / n_a - delta_b / n_b (a pair moves O-SB(a) and O-SB(b) in opposite directions).
    Var(x_j) is estimated by x_j^2 (its mean is Var(x_j) + mu_j^2: slightly conservative) and g_j^2 by
    the square of a leave-pair-j-out estimate minus that estimate's sampling variance, so the two
    factors are independent and the part is ~0 when delta = 0. Quadratic (degenerate) part:
    (1/K^2) sum_o 2 sigma_o^4 / (n_o (n_o - 1)), sigma_o^4 estimated by s_o^4 minus the variance of s_o^2.
    """
    s, q, n = occupation_sums(t)
    u = u_statistics(s, q, n)
    keep = ~np.isnan(u)
    k = int(keep.sum())
    if k == 0:
        return math.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        var_o = np.where(keep, (q - s**2 / n) / (n - 1), 0.0)  # sample variance s_o^2 of d_j(o)
        n_in = np.where(keep, n, np.inf)
    a, b, x = t.a, t.b, t.x
    # leave pair j out of the two means it enters (d_j(a) = x_j, d_j(b) = -x_j)
    mean_a = np.where(keep[a], (s[a] - x) / (n_in[a] - 1), 0.0)
    mean_b = np.where(keep[b], (s[b] + x) / (n_in[b] - 1), 0.0)
    g_hat = mean_a / n_in[a] - mean_b / n_in[b]
    shared = _shared_counts(t) - 1
    v_occ = (var_o[a] + var_o[b]) / 2
    var_g = (var_o[a] / (n_in[a] ** 2 * (n_in[a] - 1)) + var_o[b] / (n_in[b] ** 2 * (n_in[b] - 1))
             + 2 * shared * v_occ / (n_in[a] * n_in[b] * (n_in[a] - 1) * (n_in[b] - 1)))
    linear = 4 / k**2 * float(np.sum(x**2 * (g_hat**2 - var_g)))
    return max(linear, 0.0) + _quadratic_part(t)


def _quadratic_part(t: PairTable) -> float:
    """(1/K^2) sum_o 2 sigma_o^4 / (n_o (n_o - 1)), sigma_o^4 estimated by s_o^4 minus the variance of s_o^2."""
    s, q, n = occupation_sums(t)
    keep = n >= 2
    k = int(keep.sum())
    if k == 0:
        return math.nan
    m = t.incidence()
    ab = np.abs(m)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(keep, s / n, 0.0)
        var_o = np.where(keep, (q - s**2 / n) / (n - 1), 0.0)
        # sum over pairs of (d - mean)^4 from power sums (d = +-x: odd powers carry the sign)
        resid4 = t.x**4 @ ab.T - 4 * mean * (t.x**3 @ m.T) + 6 * mean**2 * q - 4 * mean**3 * s + n * mean**4
        m4 = np.where(keep, resid4 / n, 0.0)
        var_s2 = np.where(keep, (m4 - var_o**2 * (n - 3) / (n - 1)) / n, 0.0)
        sigma4 = np.maximum(var_o**2 - var_s2, 0.0)
        return 2 / k**2 * float(np.sum(np.where(keep, sigma4 / (n * (n - 1)), 0.0)))


def _shared_counts(t: PairTable) -> np.ndarray:
    """For each pair, how many pairs name the same two occupations (itself included)."""
    lo, hi = np.minimum(t.a, t.b), np.maximum(t.a, t.b)
    keys = lo * (len(t.occupations) + 1) + hi
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    return counts[inverse].astype(float)


def _variance_parts(t: PairTable) -> tuple[float, float]:
    """(Q, lam): Var(theta^2-hat) at a hypothesised theta^2 is about Q + lam * theta^2. Q is the
    quadratic part of ``debiased_variance``; lam is the linear part per unit theta^2 for a profile in
    which every pair's two occupations lean by theta in opposite directions (stereotype-aligned), the
    largest the linear part can be for a given theta^2 when occupations have equal pair counts."""
    s, q, n = occupation_sums(t)
    u = u_statistics(s, q, n)
    keep = ~np.isnan(u)
    k = int(keep.sum())
    if k == 0:
        return math.nan, math.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        inv = np.where(keep, 1 / n, 0.0)
    lam = 4 / k**2 * float(np.sum(t.x**2 * (inv[t.a] + inv[t.b]) ** 2))
    return _quadratic_part(t), lam


def debiased_interval(t: PairTable, *, confidence: float = 0.95) -> Interval:
    """Interval for theta (the root-mean-square true O-SB), on the theta^2 scale then signed root.

    A score-type interval: theta^2 is in it when |theta^2-hat - theta^2| <= z sqrt(Q + lam theta^2)
    (``_variance_parts``), i.e. the variance is that of the hypothesised value, not of the estimate.
    A Wald interval with the estimated variance under-covers here, because a low estimate comes with
    a low variance estimate. A model whose pairs never disagree across genders has [0, 0].
    ``se`` is ``sqrt(debiased_variance)`` on the theta^2 scale."""
    est = debiased_effect(t)
    if math.isnan(est.theta2):
        return Interval(math.nan, math.nan, math.nan, math.nan, confidence)
    z2 = _z(confidence) ** 2
    quad, lam = _variance_parts(t)
    b = 2 * est.theta2 + z2 * lam
    disc = b * b - 4 * (est.theta2**2 - z2 * quad)
    if disc >= 0:
        lo, hi = (b - math.sqrt(disc)) / 2, (b + math.sqrt(disc)) / 2
    else:  # far below zero: no theta^2 >= 0 is consistent; report the interval at theta^2 = 0
        lo, hi = est.theta2 - math.sqrt(z2 * quad), est.theta2 + math.sqrt(z2 * quad)
    se = math.sqrt(debiased_variance(t))
    return Interval(est.theta, signed_sqrt(lo), signed_sqrt(hi), se, confidence)


def exceedance_p(t: PairTable, threshold: float) -> float:
    """One-sided p-value of H0 "theta <= threshold" (the null the a_sb gate's fail rejects): the score
    statistic of ``debiased_interval`` at theta^2 = threshold^2, z = (theta2-hat - thr^2) / sqrt(Q + lam thr^2).
    It is below (1 - confidence) / 2 exactly when the interval's lower end is above the threshold, and is
    analytic (no Monte Carlo floor), so Holm over many conditions can still reject."""
    est = debiased_effect(t)
    if math.isnan(est.theta2):
        return math.nan
    quad, lam = _variance_parts(t)
    var = quad + lam * threshold**2
    diff = est.theta2 - threshold**2
    if var <= 0:
        return 0.0 if diff > 0 else 1.0
    return float(stats.norm.sf(diff / math.sqrt(var)))


def gap_interval(t: PairTable, *, confidence: float = 0.95) -> tuple[Interval, Interval]:
    """(signed RPA gap pro - anti, |gap|) over twin pairs, "other" counted as wrong. The gate on |gap| with
    the upper bound passes only when the signed interval lies inside (-threshold, threshold). A pair
    answered over several seeds has a fractional gap (its seeds' mean): a t interval over pairs then."""
    binary = bool(np.all(np.isin(t.gap, (-1.0, 0.0, 1.0))))
    signed = (paired_difference_interval if binary else mean_interval)(t.gap, confidence=confidence)
    return signed, abs_interval(signed)


@dataclass(frozen=True)
class WorstBound:
    """Simultaneous intervals for every O-SB (family-wise ``confidence``) and what they give for the worst
    |O-SB|: ``upper`` = max over occupations of the larger |end| (certifies "no occupation leans more");
    ``lower`` = max over occupations of the distance from 0 of intervals that exclude 0 (a gate failing
    when ``lower`` > threshold fails a model with no such lean in at most 1 - confidence of runs)."""

    estimate: float
    upper: float
    lower: float
    critical: float
    intervals: dict[str, tuple[float, float]]
    size: np.ndarray = field(default_factory=lambda: np.zeros(0))  # each occupation's |O-SB|
    se: np.ndarray = field(default_factory=lambda: np.zeros(0))  # and its (smoothed) standard error
    max_dev: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per resample: max over occupations of |m* - m| / se

    def p_beyond(self, threshold: float) -> float:
        """One-sided p of H0 "every |O-SB| <= threshold" (the single-step max-T test: the share of resamples whose
        largest standardised deviation reaches max_o (|m_o| - threshold) / se_o); the gate fails when ``lower``
        exceeds the threshold, i.e. when this p is below 1 - confidence. Beyond every resample, the union bound
        over occupations of the normal tail (no Monte Carlo floor). 1 where nothing was measured."""
        if not self.max_dev.size or not self.size.size:
            return 1.0
        from scipy import stats

        t_obs = float(np.max((self.size - threshold) / self.se))
        reached = int(np.sum(self.max_dev >= t_obs))
        if reached:
            return min(1.0, (1 + reached) / (1 + self.max_dev.size))
        return float(min(1.0 / (1 + self.max_dev.size), 2 * self.size.size * stats.norm.sf(t_obs)))


def worst_o_sb_bound(t: PairTable, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> WorstBound:
    """Max-T simultaneous intervals: c = quantile of max_o |m*_o - m_o| / se_o over a bootstrap of twin
    pairs; interval m_o +- c se_o, se_o smoothed by a pseudo-pair (``_smoothed_se``). For a model
    whose twins always agree the bound is c se_o > 0 even though every O-SB is 0."""
    s, q, n = occupation_sums(t)
    keep = n >= 2
    if not keep.any():
        return WorstBound(math.nan, math.nan, math.nan, math.nan, {})
    mean = s[keep] / n[keep]
    se = _smoothed_se(s[keep], q[keep], n[keep])
    rng = np.random.default_rng(seed)
    w = bootstrap_weights(t.n_pairs, n_resamples, rng)
    sb, qb, nb = occupation_sums(t, w)
    with np.errstate(invalid="ignore", divide="ignore"):
        dev = np.abs(sb[:, keep] / nb[:, keep] - mean) / _smoothed_se(sb[:, keep], qb[:, keep], nb[:, keep])
    c = float(np.quantile(np.nan_to_num(dev.max(axis=1)), confidence))
    occs = [o for o, k in zip(t.occupations, keep) if k]
    intervals = {o: (float(mean[i] - c * se[i]), float(mean[i] + c * se[i])) for i, o in enumerate(occs)}
    return WorstBound(float(np.abs(mean).max()), float(np.max(np.abs(mean) + c * se)),
                      float(np.max(np.maximum(np.abs(mean) - c * se, 0.0))), c, intervals,
                      np.abs(mean), se, np.nan_to_num(dev.max(axis=1)))


def _smoothed_se(s: np.ndarray, q: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Standard error of an O-SB with one +1 and one -1 pseudo-pair added to its variance, so that an
    occupation whose few pairs happen to agree does not get a zero-width interval."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(np.maximum(q + 2 - s**2 / (n + 2), 0) / (n + 1) / n)


def combine_seed_tables(tables: Sequence[PairTable], *, confidence: float = 0.95) -> Interval:
    """theta from several seeds' tables of the same pairs: each pair's x averaged over the seeds that
    answered it (one unit per pair, as ``selection.pair_table`` does for a multi-seed run), then
    ``debiased_interval``. Averaging per seed after squaring would count a pair's repeated answers as new
    evidence: theta would be biased upward and its interval too narrow."""
    if not tables:
        return Interval(math.nan, math.nan, math.nan, math.nan, confidence)
    first = tables[0]
    sums: dict[str, list[float]] = {}
    where: dict[str, tuple[int, int]] = {}
    for t in tables:
        if t.occupations != first.occupations:
            raise ValueError("the seeds' tables name different occupations")
        for key, a, b, x in zip(t.pair_ids, t.a, t.b, t.x):
            sums.setdefault(key, []).append(float(x))
            where[key] = (int(a), int(b))
    keys = list(sums)
    merged = PairTable(first.occupations, np.array([where[k][0] for k in keys], int), np.array([where[k][1] for k in keys], int),
                       np.array([float(np.mean(sums[k])) for k in keys]), tuple(keys), np.zeros(0))
    return debiased_interval(merged, confidence=confidence)


def align(new: PairTable, old: PairTable) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the pairs present (complete) in both tables, matched by pair id."""
    where_old = {k: i for i, k in enumerate(old.pair_ids)}
    both = [(i, where_old[k]) for i, k in enumerate(new.pair_ids) if k in where_old]
    return np.array([i for i, _ in both], int), np.array([j for _, j in both], int)


def _subset(t: PairTable, idx: np.ndarray) -> PairTable:
    return PairTable(t.occupations, t.a[idx], t.b[idx], t.x[idx], tuple(t.pair_ids[i] for i in idx), t.gap[:0])


def paired_change(
    new: PairTable, old: PairTable, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> Interval:
    """theta^2(new) - theta^2(old) on the pairs complete in both runs (a regression gate fails when the
    lower bound is above its tolerance). Basic bootstrap over twin pairs drawn jointly in both runs,
    pivoting on the bootstrap world's own truth (the plug-in mean of O-SB^2, which a U-statistic on a
    resample estimates without bias), so the interval is not shifted by the noise term."""
    i_new, i_old = align(new, old)
    if i_new.size == 0 or new.occupations != old.occupations:
        return Interval(math.nan, math.nan, math.nan, math.nan, confidence)
    tn, to = _subset(new, i_new), _subset(old, i_old)
    rng = np.random.default_rng(seed)
    w = bootstrap_weights(i_new.size, n_resamples, rng)

    def theta2_and_plugin(t: PairTable, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        s, q, n = occupation_sums(t, weights)
        u = u_statistics(s, q, n)
        with np.errstate(invalid="ignore", divide="ignore"):
            plug = np.where(n >= 2, (s / n) ** 2, np.nan)
        return np.nanmean(u, axis=-1), np.nanmean(plug, axis=-1)

    est_new, plug_new = theta2_and_plugin(tn, None)
    est_old, plug_old = theta2_and_plugin(to, None)
    boot_new, _ = theta2_and_plugin(tn, w)
    boot_old, _ = theta2_and_plugin(to, w)
    pivot = (boot_new - boot_old) - (plug_new - plug_old)
    alpha = (1 - confidence) / 2
    q_lo, q_hi = np.quantile(pivot, [alpha, 1 - alpha])
    est = float(est_new - est_old)
    return Interval(est, est - float(q_hi), est - float(q_lo), float(pivot.std(ddof=1)), confidence)
