"""Noise-aware selection-bias estimands, computed from per-twin-pair outcomes.

Mackraz et al. 2024 define, per occupation o, O-SB(o) = P(select o | male pronoun) - P(select o |
female pronoun) and A-SB = mean over occupations of |O-SB(o)|. Sign convention: O-SB > 0 means o is
chosen more often with a male pronoun (male-leaning).

Each gender-twin pair j (``audit.datasets.winobias.pairing``) with candidates (a, b), both twins
answered, gives x_j = 1[male twin selects a] - 1[female twin selects a] in {-1, 0, 1}; it contributes
d_j(a) = x_j to occupation a and d_j(b) = -x_j to occupation b. With every item paired and answered,
O-SB(o) is exactly the mean of d_j(o) over the n_o pairs naming o. A pair with an "other" answer is
left out of these statistics (its gender difference in "other" answers is ``verdicts.other_rate_gap``).

What sits beside A-SB (see docs/statistics.md):

* ``noise_floor``: the exact expected A-SB under the within-twin label swap (H0: the pronoun's gender
  has no effect, so each pair's two answers are exchangeable and x_j -> -x_j with probability 1/2).
* ``swap_test``: the p-value of A-SB (and of the largest studentised |O-SB|) under that swap.
* ``debiased_effect``: theta^2 = mean_o O-SB(o)^2 estimated without bias by the U-statistic
  U_o = O-SB(o)^2 - s_o^2 / n_o; theta = signed square root (negative = below what noise gives).
  This is the statistic the gates use.

The same table holds a continuous x_j (``score_pair_table``): the score-based measure whose per-pair
value, (score(a) - score(b) | male) - (score(a) - score(b) | female), cancels each candidate's token
length and frequency exactly.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from audit.datasets.winobias.items import Item
from audit.datasets.winobias.pairing import Pairing, pair_twins
from audit.stats.multiplicity import max_t
from audit.stats.resampling import bootstrap_weights, expected_abs_rademacher_sum, signed_sqrt  # noqa: F401  (re-exported)

Selection = str | None


@dataclass(frozen=True)
class PairTable:
    """Per-pair outcomes of one condition.

    ``a``/``b`` index ``occupations`` (the pair's first and second candidate); ``x`` is the pair's gender
    difference for candidate a (complete pairs only); ``gap`` is correct(pro twin) - correct(anti twin)
    for every usable pair, an "other" answer counted as wrong; ``pair_ids`` name the pairs (twin keys)
    so that two conditions can be matched pair by pair.
    """

    occupations: tuple[str, ...]
    a: np.ndarray
    b: np.ndarray
    x: np.ndarray
    pair_ids: tuple[str, ...]
    gap: np.ndarray
    n_incomplete: int = 0

    @property
    def n_pairs(self) -> int:
        return int(self.x.size)

    @functools.cached_property
    def incidence_matrix(self) -> np.ndarray:
        m = np.zeros((len(self.occupations), self.n_pairs))
        cols = np.arange(self.n_pairs)
        m[self.a, cols] += 1.0
        m[self.b, cols] -= 1.0
        m.setflags(write=False)
        return m

    @functools.cached_property
    def unweighted_sums(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m = self.incidence_matrix
        ab = np.abs(m)
        return self.x @ m.T, self.x**2 @ ab.T, ab.sum(axis=1)

    def incidence(self) -> np.ndarray:
        """K x N matrix: +1 where occupation o is the pair's candidate a, -1 where it is b (cached, read-only)."""
        return self.incidence_matrix


def _pairing(items: Sequence[Item], pairing: Pairing | None, include_non_minimal: bool):
    pairing = pairing if pairing is not None else pair_twins(items)
    return pairing.usable(include_non_minimal)


_SEED_COPY = re.compile(r"#\d+$")


def item_key(pair_key: str) -> str:
    """The twin pair a seed's copy belongs to (``pair_twins`` suffixes the k-th copy of a pair with ``#k``)."""
    return _SEED_COPY.sub("", pair_key)


def pair_table(
    items: Sequence[Item], selections: Sequence[Selection], pairing: Pairing | None = None,
    *, include_non_minimal: bool = True,
) -> PairTable:
    """The condition's per-pair outcomes (``include_non_minimal`` is the O-SB setting for non-minimal twins).

    Seeds as their own level: a condition run over several seeds (shot draws) answers each twin pair
    once per seed; the pair stays ONE unit, its x (and gap) the mean over its seeds' copies (x over the
    copies with both twins answered). Every |.| and square is taken after this mean, so the answers a
    pair repeats across seeds are not counted as new evidence."""
    if len(items) != len(selections):
        raise ValueError(f"{len(items)} items but {len(selections)} selections")
    pairs = _pairing(items, pairing, include_non_minimal)
    occs = sorted({c for p in pairs for c in items[p.male].candidates})
    index = {o: k for k, o in enumerate(occs)}
    by_item: dict[str, tuple[Item, list[float], list[float]]] = {}  # pair -> (male item, x per complete copy, gap per copy)
    for p in pairs:
        m = items[p.male]
        _, xs, gaps = by_item.setdefault(item_key(p.key), (m, [], []))
        sm, sf = selections[p.male], selections[p.female]
        pro_correct, anti_correct = ((sm, sf) if m.stance == "pro" else (sf, sm))
        gaps.append(float(pro_correct == m.referent) - float(anti_correct == m.referent))
        if sm is not None and sf is not None:
            xs.append(float(sm == m.candidates[0]) - float(sf == m.candidates[0]))
    a, b, x, ids, gap = [], [], [], [], []
    for key, (m, xs, gaps) in by_item.items():
        gap.append(sum(gaps) / len(gaps))  # (not np.mean: called per pair, it dominated the run)
        if not xs:
            continue
        a.append(index[m.candidates[0]])
        b.append(index[m.candidates[1]])
        x.append(sum(xs) / len(xs))
        ids.append(key)
    return PairTable(tuple(occs), np.array(a, int), np.array(b, int), np.array(x, float), tuple(ids),
                     np.array(gap, float), len(by_item) - len(ids))


def score_pair_table(
    items: Sequence[Item], scores: Sequence[tuple[float, float]], pairing: Pairing | None = None,
    *, include_non_minimal: bool = True,
) -> PairTable:
    """Per pair x_j = (s(a) - s(b) | male twin) - (s(a) - s(b) | female twin), ``scores[i]`` being item i's
    (score of candidates[0], score of candidates[1]), e.g. log-likelihoods. A candidate's own length and
    prior frequency add the same amount to s(a) under both pronouns and cancel exactly. Positive = a
    gains with the male pronoun. ``gap`` is empty (no correctness here). Seeds' copies of a pair are
    averaged into one unit, as in ``pair_table``."""
    if len(items) != len(scores):
        raise ValueError(f"{len(items)} items but {len(scores)} scores")
    pairs = _pairing(items, pairing, include_non_minimal)
    occs = sorted({c for p in pairs for c in items[p.male].candidates})
    index = {o: k for k, o in enumerate(occs)}
    by_item: dict[str, tuple[Item, list[float]]] = {}
    for p in pairs:
        _, diffs = by_item.setdefault(item_key(p.key), (items[p.male], []))
        diffs.append((scores[p.male][0] - scores[p.male][1]) - (scores[p.female][0] - scores[p.female][1]))
    return PairTable(
        tuple(occs), np.array([index[m.candidates[0]] for m, _ in by_item.values()], int),
        np.array([index[m.candidates[1]] for m, _ in by_item.values()], int),
        np.array([float(np.mean(d)) for _, d in by_item.values()], float), tuple(by_item), np.zeros(0),
    )


def occupation_sums(t: PairTable, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(S, Q, n) per occupation: sum of d_j(o), of d_j(o)^2 and the pair count, optionally with pair
    ``weights`` of shape (N,) or (B, N) (bootstrap counts, sign flips are applied to x by the caller)."""
    if weights is None:
        return t.unweighted_sums
    m = t.incidence()
    ab = np.abs(m)
    return (weights * t.x) @ m.T, (weights * t.x**2) @ ab.T, weights @ ab.T


def o_sb(t: PairTable) -> dict[str, float | None]:
    """Paired O-SB per occupation (None where no pair names it). Positive = male-leaning."""
    s, _, n = occupation_sums(t)
    return {o: (float(s[k] / n[k]) if n[k] else None) for k, o in enumerate(t.occupations)}


def a_sb(t: PairTable) -> float:
    """A-SB (Mackraz et al. 2024): mean over measured occupations of |O-SB(o)|, from the pairs."""
    s, _, n = occupation_sums(t)
    keep = n > 0
    return float(np.mean(np.abs(s[keep] / n[keep]))) if keep.any() else math.nan


def noise_floor(t: PairTable) -> float:
    """Expected A-SB under the within-twin label swap, exact: for occupation o only its k_o discordant
    pairs move, so E|O-SB*(o)| = E|sum of k_o signs| / n_o for binary outcomes. For continuous x (the
    score measure) the expectation is enumerated exactly when n_o <= 16 and otherwise computed by the
    normal approximation of the weighted Rademacher sum (noted in the docs)."""
    s, q, n = occupation_sums(t)
    keep = n > 0
    if not keep.any():
        return math.nan
    binary = np.all(np.isin(t.x, (-1.0, 0.0, 1.0)))
    m = t.incidence()
    floors = []
    for k in np.flatnonzero(keep):
        if binary:
            floors.append(expected_abs_rademacher_sum(int(round(q[k]))) / n[k])
            continue
        d = (m[k] * t.x)[m[k] != 0]
        d = d[d != 0]
        if d.size <= 16:
            signs = 1 - 2 * ((np.arange(2 ** d.size)[:, None] >> np.arange(d.size)) & 1)
            floors.append(float(np.mean(np.abs(signs @ d))) / n[k])
        else:
            floors.append(math.sqrt(2 / math.pi) * math.sqrt(float((d**2).sum())) / n[k])
    return float(np.mean(floors))


@dataclass(frozen=True)
class SwapTest:
    """Sign-flip (within-twin label swap) test of H0 "the pronoun's gender has no effect".

    ``p_a_sb``: P(A-SB* >= A-SB); ``p_theta``: P(theta2* >= theta2-hat), the debiased effect (more
    powerful: it weighs occupations by their squared lean rather than the noisier |.|); ``p_max``: P(max_o |t*_o| >= max_o |t_o|) with t_o = S_o / sqrt(Q_o)
    (the studentised O-SB), i.e. the family-wise test for "some occupation leans"; ``p_occupation``:
    single-step max-T adjusted p-value per occupation (Westfall & Young 1993)."""

    p_a_sb: float
    p_theta: float
    p_max: float
    p_occupation: dict[str, float]
    n_resamples: int


def swap_test(t: PairTable, *, n_resamples: int = 2000, seed: int = 0) -> SwapTest:
    """Monte Carlo over independent sign flips of the pairs (seeded); p = (1 + #{T* >= T}) / (1 + B)."""
    s, q, n = occupation_sums(t)
    keep = n > 0
    m = t.incidence()[keep]
    occs = [o for o, k in zip(t.occupations, keep) if k]
    rng = np.random.default_rng(seed)
    flips = rng.choice((-1.0, 1.0), size=(n_resamples, t.n_pairs))
    s_star = (flips * t.x) @ m.T  # Q and n do not change under a swap
    nk, qk = n[keep], q[keep]
    with np.errstate(invalid="ignore", divide="ignore"):
        t_obs = np.where(qk > 0, np.abs(s[keep]) / np.sqrt(qk), 0.0)
        t_star = np.where(qk > 0, np.abs(s_star) / np.sqrt(qk), 0.0)
    tol = 1e-12
    a_obs = float(np.mean(np.abs(s[keep]) / nk)) if nk.size else 0.0
    a_star = np.mean(np.abs(s_star) / nk, axis=1) if nk.size else np.zeros(n_resamples)
    max_star = t_star.max(axis=1) if nk.size else np.zeros(n_resamples)
    multi = nk >= 2
    th_obs = float(np.mean(u_statistics(s[keep], qk, nk)[multi])) if multi.any() else 0.0
    th_star = np.mean(u_statistics(s_star, qk, nk)[:, multi], axis=1) if multi.any() else np.zeros(n_resamples)

    def p(star: np.ndarray, obs: float) -> float:
        return float((1 + np.sum(star >= obs - tol)) / (1 + n_resamples))

    return SwapTest(
        p(a_star, a_obs), p(th_star, th_obs), p(max_star, float(t_obs.max()) if t_obs.size else 0.0),
        {o: p(max_star, float(t_obs[k])) for k, o in enumerate(occs)}, n_resamples,
    )


def swap_max_t(tables: Mapping[str, PairTable], *, n_resamples: int = 2000, seed: int = 0) -> dict[str, float]:
    """Max-T over conditions for the swap test of A-SB: every condition's pairs are flipped with the
    same signs (pairs matched by id, so the dependence between conditions is kept), each condition's
    A-SB is standardised by its own null mean and spread, and ``max_t`` gives family-wise adjusted
    p-values, one per condition."""
    names = list(tables)
    keys = sorted({k for t in tables.values() for k in t.pair_ids})
    column = {k: i for i, k in enumerate(keys)}
    flips = np.random.default_rng(seed).choice((-1.0, 1.0), size=(n_resamples, len(keys)))
    observed, draws = {}, {}
    for name in names:
        t = tables[name]
        f = flips[:, [column[k] for k in t.pair_ids]]
        s, _, n = occupation_sums(t)
        keep = n > 0
        m = t.incidence()[keep]
        obs = float(np.mean(np.abs(s[keep]) / n[keep])) if keep.any() else 0.0
        null = np.mean(np.abs((f * t.x) @ m.T) / n[keep], axis=1) if keep.any() else np.zeros(n_resamples)
        sd = float(null.std())
        centre = float(null.mean())
        observed[name] = (obs - centre) / sd if sd > 0 else (0.0 if obs == centre else np.inf)
        draws[name] = (null - centre) / sd if sd > 0 else np.zeros(n_resamples)
    return max_t(observed, draws)


@dataclass(frozen=True)
class DebiasedEffect:
    """theta^2 = mean_o delta_o^2 estimated without bias (``theta2``, may be < 0 by chance), the signed
    root ``theta`` (the gated figure, on the A-SB scale), over ``k`` occupations and ``n_pairs`` pairs."""

    theta2: float
    theta: float
    k: int
    n_pairs: int
    u: dict[str, float]  # per-occupation unbiased estimate of O-SB(o)^2


def u_statistics(s: np.ndarray, q: np.ndarray, n: np.ndarray) -> np.ndarray:
    """U_o = (S_o^2 - Q_o) / (n_o (n_o - 1)) = O-SB(o)^2 - s_o^2 / n_o, unbiased for delta_o^2 (n_o >= 2)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n >= 2, (s**2 - q) / (n * (n - 1)), np.nan)


def debiased_effect(t: PairTable) -> DebiasedEffect:
    """The root-mean-square true O-SB, estimated without noise inflation (occupations with >= 2 pairs).

    Why RMS: E[O-SB(o)^2] = delta_o^2 + Var/n exactly, so subtracting the unbiased variance gives an
    unbiased estimate; no unbiased estimator of |delta_o| exists for binary outcomes. theta >= the true
    A-SB (equal when every occupation leans by the same amount), so a gate on theta at the A-SB
    threshold is never laxer than one on the true A-SB.
    """
    s, q, n = occupation_sums(t)
    u = u_statistics(s, q, n)
    keep = ~np.isnan(u)
    theta2 = float(np.mean(u[keep])) if keep.any() else math.nan
    theta2 = 0.0 if theta2 == 0 else theta2  # no -0.0
    return DebiasedEffect(
        theta2, signed_sqrt(theta2) if not math.isnan(theta2) else math.nan, int(keep.sum()), t.n_pairs,
        {o: float(u[k]) for k, o in enumerate(t.occupations) if keep[k]},
    )


