"""Few-shot composition (Sivakumar, Mackraz et al. 2025): k solved examples drawn, seeded, from the
split the audited item is not in (the other split; with both audited, ``audit.run.shot_pools``),
meeting the requested composition exactly.

A shot's cell is (stereotype of its referent occupation, gender of its pronoun); its stance is pro
when the two agree. The three composition knobs are margins of that 2x2 table:
``pro_share`` (share of pro-stereotypical shots), ``occupations`` (referents all male-dominated,
all female-dominated, or half and half) and ``male_share`` (share of male pronouns).
"""

from __future__ import annotations

import itertools
import random
from typing import Sequence

from audit.errors import ConfigError
from audit.datasets.winobias.items import Item
from audit.datasets.winobias.occupations import lookup_occupation

Cell = tuple[str, str]  # (referent stereotype, pronoun gender)
CELLS: tuple[Cell, ...] = (("male", "male"), ("male", "female"), ("female", "male"), ("female", "female"))


def _exact(share: float, k: int, what: str, condition: str) -> int:
    n = share * k
    if abs(n - round(n)) > 1e-9:
        raise ConfigError(f"condition '{condition}': {what} = {share} cannot be met exactly with {k} shots")
    return round(n)


def cell_counts(k: int, *, pro_share: float | None, occupations: str, male_share: float | None, condition: str = "") -> dict[Cell, int]:
    """The number of shots per cell meeting every given margin exactly; among the solutions, the most
    even one (so unconstrained margins stay balanced). ConfigError when none exists."""
    n_pro = None if pro_share is None else _exact(pro_share, k, "pro_share", condition)
    n_male = None if male_share is None else _exact(male_share, k, "male_share", condition)
    n_male_occ = {"male": k, "female": 0, "balanced": None, "any": None}[occupations]
    if occupations == "balanced":
        n_male_occ = _exact(0.5, k, "occupations = 'balanced'", condition)
    best: tuple[float, dict[Cell, int]] | None = None
    for mm, mf, fm in itertools.product(range(k + 1), repeat=3):
        ff = k - mm - mf - fm
        if ff < 0:
            continue
        counts = dict(zip(CELLS, (mm, mf, fm, ff)))
        if n_pro is not None and mm + ff != n_pro:
            continue
        if n_male is not None and mm + fm != n_male:
            continue
        if n_male_occ is not None and mm + mf != n_male_occ:
            continue
        spread = sum((c - k / 4) ** 2 for c in counts.values())
        if best is None or spread < best[0]:
            best = (spread, counts)
    if best is None:
        raise ConfigError(f"condition '{condition}': no set of {k} shots meets pro_share={pro_share}, occupations={occupations}, male_share={male_share}")
    return best[1]


def _cell(item: Item) -> Cell | None:
    occ = lookup_occupation(item.referent)
    if occ is None or item.gender == "neutral":
        return None
    return (occ.stereotype, item.gender)


def compose_shots(
    pool: Sequence[Item],
    k: int,
    *,
    seed: int,
    pro_share: float | None = None,
    occupations: str = "any",
    male_share: float | None = None,
    condition: str = "",
) -> list[Item]:
    """k shots from ``pool`` (the other split), seeded, in a shuffled order, meeting the composition."""
    if k == 0:
        return []
    rng = random.Random(seed)
    unconstrained = pro_share is None and male_share is None and occupations == "any"
    if unconstrained:
        if k > len(pool):
            raise ConfigError(f"condition '{condition}': {k} shots requested but only {len(pool)} items can serve as shots")
        return rng.sample(list(pool), k)
    by_cell: dict[Cell, list[Item]] = {c: [] for c in CELLS}
    for item in pool:
        cell = _cell(item)
        if cell is not None:
            by_cell[cell].append(item)
    shots: list[Item] = []
    for cell, n in cell_counts(k, pro_share=pro_share, occupations=occupations, male_share=male_share, condition=condition).items():
        if n > len(by_cell[cell]):
            raise ConfigError(f"condition '{condition}': {n} shots with a {cell[0]}-stereotyped referent and a {cell[1]} pronoun requested, but only {len(by_cell[cell])} exist")
        shots.extend(rng.sample(by_cell[cell], n))
    rng.shuffle(shots)
    return shots
