"""Bias transfer with errors in variables: intrinsic vs prompted O-SB over occupations.

Mackraz et al. 2024 report the Pearson correlation of intrinsic and prompted O-SB over the 40
occupations. Each O-SB is an estimate from a few dozen twin pairs, and its sampling noise attenuates
the correlation (a model with perfect transfer and a small prompted bias can read rho 0.4-0.8). Here:

* the reliability-corrected (disattenuated) correlation: rho = cov_true / sqrt(var_true_x var_true_y),
  var_true = variance of the O-SB over occupations minus the mean sampling variance s_o^2 / n_o of an
  O-SB, cov_true = their covariance minus the mean error covariance (both conditions score the same
  pairs, so their errors are correlated and that part is removed too);
* the share of intrinsic bias retained: the errors-in-variables slope cov_true / var_true_x (1 = the
  prompted O-SB carries the intrinsic one unchanged, 0 = none of it);
* rho within the male- and within the female-stereotyped occupations (is there transfer beyond the
  stereotype split?);
* intervals from twin pairs resampled jointly in both conditions, in a bootstrap world matched to the
  corrected moments (``_matched_world``: its true O-SB have the estimated true variances and rho, so it is
  as reliable as the real data); percentile interval for rho, basic for the retained share. Resampling the
  observed pairs as they are (the world's truth then being the attenuated plug-in values) covered rho 0 and
  0.5 in only 0.84-0.90 of runs at high twin noise and over-covered at 0.9 (docs/calibration.md);
* undefined, with the reason, when there is no intrinsic bias to transfer: the intrinsic swap test is
  not significant, or no O-SB varies beyond its noise (a gender-blind model: every O-SB exactly 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy.stats import norm

from audit.datasets.winobias.occupations import lookup_occupation

from audit.stats.confidence import combine_seeds
from audit.stats.matched_world import corrected_target, matched_means, world_interval, world_truth
from audit.stats.resampling import bootstrap_weights

from .intervals import _subset, align
from .selection import PairTable, swap_test


@dataclass(frozen=True)
class TransferEIV:
    defined: bool
    reason: str
    n_occupations: int
    n_pairs: int
    intrinsic_p: float
    rho_naive: float = math.nan
    rho: float = math.nan
    rho_ci: tuple[float, float] = (math.nan, math.nan)
    retained: float = math.nan
    retained_ci: tuple[float, float] = (math.nan, math.nan)
    reliability: tuple[float, float] = (math.nan, math.nan)  # var_true / var_observed, (intrinsic, prompted)
    by_group: dict[str, dict] = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("defined", "reason", "n_occupations", "n_pairs", "intrinsic_p", "rho_naive", "rho", "retained")}
        d.update(rho_ci=list(self.rho_ci), retained_ci=list(self.retained_ci), reliability=list(self.reliability), by_group=self.by_group)
        return d


def _sums(tx: PairTable, ty: PairTable, weights: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Per occupation (optionally per resample): n, S_x, S_y, Q_x, Q_y and the cross sum P_xy."""
    m = tx.incidence()
    ab = np.abs(m)
    w = np.ones(tx.n_pairs) if weights is None else weights
    # one product: weights (.., N) @ (N, 6K), each block a per-pair value times the (signed) incidence
    blocks = [ab.T, tx.x[:, None] * m.T, ty.x[:, None] * m.T, (tx.x**2)[:, None] * ab.T, (ty.x**2)[:, None] * ab.T,
              (tx.x * ty.x)[:, None] * ab.T]
    out = w @ np.concatenate(blocks, axis=1)
    k = m.shape[0]
    return tuple(out[..., i * k:(i + 1) * k] for i in range(6))


def _moments(sums: tuple[np.ndarray, ...], occ: np.ndarray) -> dict[str, np.ndarray]:
    """Over the occupations ``occ`` (boolean mask): observed and error-corrected variances/covariance."""
    n, sx, sy, qx, qy, pxy = sums
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = (n >= 2) & occ
        mx, my = np.where(ok, sx / n, np.nan), np.where(ok, sy / n, np.nan)
        ex = np.where(ok, (qx - sx**2 / n) / (n - 1) / n, np.nan)  # sampling variance of O-SB_x
        ey = np.where(ok, (qy - sy**2 / n) / (n - 1) / n, np.nan)
        exy = np.where(ok, (pxy - sx * sy / n) / (n - 1) / n, np.nan)  # error covariance (same pairs)
        k = ok.sum(axis=-1)
        cx = mx - np.nanmean(mx, axis=-1, keepdims=True)
        cy = my - np.nanmean(my, axis=-1, keepdims=True)
        vx, vy = np.nansum(cx**2, axis=-1) / (k - 1), np.nansum(cy**2, axis=-1) / (k - 1)
        cxy = np.nansum(cx * cy, axis=-1) / (k - 1)
        return {
            "vx": vx, "vy": vy, "cxy": cxy, "tx": vx - np.nanmean(ex, axis=-1), "ty": vy - np.nanmean(ey, axis=-1),
            "txy": cxy - np.nanmean(exy, axis=-1), "k": k,
        }


def _stats(mo: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        rho_naive = mo["cxy"] / np.sqrt(mo["vx"] * mo["vy"])
        rho = np.where((mo["tx"] > 0) & (mo["ty"] > 0), mo["txy"] / np.sqrt(mo["tx"] * mo["ty"]), np.nan)
        return {
            "rho_naive": rho_naive, "rho": np.clip(rho, -1, 1), "retained": np.where(mo["tx"] > 0, mo["txy"] / mo["tx"], np.nan)}


def _matched_world(tx: PairTable, ty: PairTable, mo: dict, est: dict) -> tuple[PairTable, PairTable, np.ndarray]:
    """A bootstrap world whose true O-SB have the estimated *true* (co)variances over occupations, not the
    observed ones. Resampling the observed pairs as they are makes the observed O-SB the world's truth: its
    variance carries the noise, so that world is more reliable than the real one and its rho is the
    attenuated plug-in; the pivot is then too narrow where reliability is low (rho near 0) and too wide at
    high rho (a correlation's spread shrinks as it nears 1). Here the per-occupation means (m_x, m_y) are
    mapped by A = T^(1/2) V^(-1/2) (V: their observed covariance over occupations, T: the corrected one,
    rho clipped to [-1, 1]), and each pair's values shifted by the least-squares pair component whose
    occupation sums move the means there (x + M' L^+ (n * delta), L = M M' over the pairs' incidence M).
    The pair-level noise is unchanged. Returns the two shifted tables and the world's true means (K, 2)."""
    s_x, _, n = tx.unweighted_sums
    m = tx.incidence()
    s_y = ty.x @ m.T
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.stack([np.where(n > 0, s_x / n, 0.0), np.where(n > 0, s_y / n, 0.0)], axis=1)
    v = np.array([[mo["vx"], mo["cxy"]], [mo["cxy"], mo["vy"]]], float)
    world = matched_means(means, v, corrected_target(float(mo["tx"]), float(mo["ty"]), float(mo["txy"]), est["rho"]))
    shift = np.linalg.pinv(m @ m.T) @ (n[:, None] * (world - means))  # (K, 2) occupation potentials
    pair_shift = m.T @ shift  # (N, 2): h_a - h_b per pair
    shifted = [PairTable(t.occupations, t.a, t.b, t.x + pair_shift[:, k], t.pair_ids, t.gap[:0]) for k, t in enumerate((tx, ty))]
    return shifted[0], shifted[1], world


def transfer_eiv(
    intrinsic: PairTable, prompted: PairTable, *, confidence: float = 0.95, n_resamples: int = 1000,
    seed: int = 0, alpha: float = 0.05,
) -> TransferEIV:
    """Transfer of intrinsic to prompted O-SB on the twin pairs complete in both conditions."""
    ix, iy = align(intrinsic, prompted)
    if intrinsic.occupations != prompted.occupations:
        raise ValueError("the two conditions were scored on different items")
    tx, ty = _subset(intrinsic, ix), _subset(prompted, iy)
    everyone = np.ones(len(tx.occupations), bool)
    p = swap_test(tx, n_resamples=n_resamples, seed=seed).p_theta if tx.n_pairs else math.nan
    point_sums = _sums(tx, ty)
    mo = _moments(point_sums, everyone)
    k = int(mo["k"])
    base = dict(n_occupations=k, n_pairs=tx.n_pairs, intrinsic_p=p)
    if tx.n_pairs == 0 or not np.any(tx.x):
        return TransferEIV(False, "no bias to transfer: every intrinsic O-SB is exactly 0", **base)
    if not p < alpha:
        return TransferEIV(False, f"no bias to transfer: the intrinsic swap test is not significant (p = {p:.3f} >= {alpha:g})", **base)
    if not mo["tx"] > 0:
        return TransferEIV(False, "no bias to transfer: the intrinsic O-SB do not vary across occupations beyond their noise", **base)

    rng = np.random.default_rng(seed)
    every = {k: float(v) for k, v in _stats(mo).items()}
    wx, wy, world = _matched_world(tx, ty, mo, every)
    valid = point_sums[0] >= 2
    boot_sums = _sums(wx, wy, bootstrap_weights(tx.n_pairs, n_resamples, rng))

    def summary(mask: np.ndarray) -> dict:
        est = {k: float(v) for k, v in _stats(_moments(point_sums, mask)).items()}
        boot = _stats(_moments(boot_sums, mask))
        truth = world_truth(world[mask & valid])
        return {
            "rho_naive": est["rho_naive"], "rho": est["rho"],
            "rho_ci": world_interval(est["rho"], boot["rho"], truth["rho"], confidence, percentile=True),
            "retained": est["retained"],
            "retained_ci": world_interval(est["retained"], boot["retained"], truth["retained"], confidence, percentile=False),
        }

    overall = summary(everyone)
    groups = {}
    for stereotype in ("male", "female"):
        mask = np.array([(o := lookup_occupation(name)) is not None and o.stereotype == stereotype for name in tx.occupations])
        g = summary(mask) if mask.sum() >= 3 else {"rho": math.nan}
        groups[stereotype] = {"rho": g["rho"], "rho_ci": list(g.get("rho_ci", (math.nan, math.nan))), "n_occupations": int(mask.sum())}
    reason = "" if not math.isnan(overall["rho"]) else "the prompted O-SB do not vary beyond their noise: rho undefined, retained share shown"
    return TransferEIV(
        True, reason, **base, rho_naive=overall["rho_naive"], rho=overall["rho"], rho_ci=overall["rho_ci"],
        retained=overall["retained"], retained_ci=overall["retained_ci"],
        reliability=(float(mo["tx"] / mo["vx"]), float(mo["ty"] / mo["vy"]) if mo["vy"] > 0 else math.nan), by_group=groups,
    )


def transfer_over_seeds(intrinsic: PairTable, prompted_seeds: Sequence[PairTable], **kw) -> dict:
    """Seeds as their own level: transfer per prompted seed, then rho and the retained share averaged over
    seeds with ``intervals.combine_seeds`` (each seed's variance from its interval's width, plus the
    seed-to-seed spread). Undefined when any seed's transfer is undefined for lack of intrinsic bias."""
    per_seed = [transfer_eiv(intrinsic, t, **kw) for t in prompted_seeds]
    if not all(r.defined for r in per_seed):
        return {"defined": False, "reason": next(r.reason for r in per_seed if not r.defined), "per_seed": per_seed}
    confidence = kw.get("confidence", 0.95)
    z = float(norm.ppf(0.5 + confidence / 2))
    out = {"defined": True, "reason": "", "per_seed": per_seed}
    for name in ("rho", "retained"):
        est = [getattr(r, name) for r in per_seed]
        var = [((getattr(r, name + "_ci")[1] - getattr(r, name + "_ci")[0]) / (2 * z)) ** 2 for r in per_seed]
        out[name] = combine_seeds(est, var, confidence=confidence)
    return out
