"""A bootstrap world matched to noise-corrected moments: the interval of a reliability-corrected correlation.

A transfer statistic correlates two per-unit bias estimates (intrinsic and prompted) over units, each
estimate carrying sampling noise; the corrected rho removes the noise's share of the variances and of the
covariance (errors in variables). Resampling the observed data as they are makes the *observed* per-unit
values the bootstrap world's truth: that world is more reliable than the real one (its truth carries the
noise) and its rho is the attenuated plug-in, so an interval pivoting there is too narrow where reliability
is low (rho near 0) and too wide near rho 1. Here each unit's pair of means is mapped by
A = T^(1/2) V^(-1/2) (V: their observed covariance over units, T: the corrected one), so the world's true
per-unit values have the corrected variances and rho; the dataset then shifts each unit's observations by
its unit's change (keeping each observation's own noise) and resamples them. Used by each dataset
package's corrected transfer statistic, whose units are its own groups of items.
"""

from __future__ import annotations

import math

import numpy as np


def sqrt_psd(a: np.ndarray, inverse: bool = False) -> np.ndarray:
    """The symmetric square root of a positive semi-definite matrix (or its pseudo-inverse)."""
    vals, vecs = np.linalg.eigh(a)
    vals = np.maximum(vals, 0.0)
    root = np.where(vals > 0, 1 / np.sqrt(np.where(vals > 0, vals, 1)), 0.0) if inverse else np.sqrt(vals)
    return (vecs * root) @ vecs.T


def corrected_target(t_x: float, t_y: float, t_xy: float, rho: float) -> np.ndarray:
    """The 2x2 true covariance the world should have: the corrected variances with ``rho`` (clipped to [-1, 1]);
    where rho is undefined (t_y not above 0) the corrected covariance kept, with the least t_y that allows it."""
    if math.isnan(rho):
        t_y = max(t_y, t_xy**2 / t_x)
        cross = t_xy
    else:
        cross = rho * math.sqrt(t_x * t_y)
    return np.array([[t_x, cross], [cross, t_y]])


def matched_means(means: np.ndarray, observed: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(K, 2) per-unit means mapped so that their covariance over units is ``target`` where it was ``observed``."""
    a = sqrt_psd(target) @ sqrt_psd(observed, inverse=True)
    return means @ a.T


def world_truth(world: np.ndarray) -> dict[str, float]:
    """rho and the errors-in-variables slope (the retained share) of the world's true per-unit means (K, 2)."""
    cx, cy = world[:, 0] - world[:, 0].mean(), world[:, 1] - world[:, 1].mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"rho": float(cx @ cy / math.sqrt((cx @ cx) * (cy @ cy))), "retained": float(cx @ cy / (cx @ cx))}


def world_interval(estimate: float, boot: np.ndarray, truth: float, confidence: float, percentile: bool) -> tuple[float, float]:
    """From replicates drawn in a world whose truth is ``truth``: the percentile interval (rho: the estimate
    plus the quantiles of replicate - truth, which for the overall rho, whose world truth is the estimate, is
    the replicates' quantiles; it keeps to [-1, 1] near the boundary, where a basic interval reflects the
    clipped upper tail onto the lower end), or the basic one (the retained share: the estimate minus them)."""
    boot = boot[~np.isnan(boot)]
    if math.isnan(estimate) or math.isnan(truth) or boot.size < 10:
        return (math.nan, math.nan)
    alpha = (1 - confidence) / 2
    q_lo, q_hi = np.quantile(boot - truth, [alpha, 1 - alpha])
    if percentile:
        return (float(np.clip(estimate + q_lo, -1, 1)), float(np.clip(estimate + q_hi, -1, 1)))
    return (float(estimate - q_hi), float(estimate - q_lo))
