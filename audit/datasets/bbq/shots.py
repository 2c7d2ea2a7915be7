"""Few-shot composition for BBQ (Sivakumar, Mackraz et al. 2025 vary k, stereotypical content and
balance): k solved examples drawn, seeded, from the split the audit does not evaluate.

* ``pro_share``: the share of the k shots whose correct answer is the stereotype-consistent one
  (disambiguated contexts where the biased answer is right); the other disambiguated shots are
  anti-stereotypical (the counter answer is right). 0.0 = counter-stereotypical shots only.
* ``ambiguous_share``: the share of shots with an ambiguous context (correct answer: unknown). When
  ``pro_share`` is given and this is not, no shot is ambiguous.
* ``categories``: the categories shots come from (default: every loaded one); shots are spread
  evenly over them (round robin), the category mix.
Shares must be met exactly (``share * k`` an integer); otherwise a ConfigError names the condition.
"""

from __future__ import annotations

import random
from typing import Sequence

from audit.errors import ConfigError

from .items import BBQItem


def _exact(share: float, k: int, what: str, condition: str) -> int:
    n = share * k
    if abs(n - round(n)) > 1e-9:
        raise ConfigError(f"condition '{condition}': {what} = {share} cannot be met exactly with {k} shots")
    return round(n)


def _cell(item: BBQItem) -> str:
    if item.context_condition == "ambig":
        return "ambig"
    return "pro" if item.label == item.biased_index else "anti"


def compose_bbq_shots(pool: Sequence[BBQItem], k: int, *, seed: int, pro_share: float | None = None,
                      ambiguous_share: float | None = None, categories: Sequence[str] | None = None,
                      condition: str = "") -> list[BBQItem]:
    if k == 0:
        return []
    n_amb = None if ambiguous_share is None else _exact(ambiguous_share, k, "ambiguous_share", condition)
    wanted: dict[str, int] | None = None
    if pro_share is not None:
        n_pro = _exact(pro_share, k, "pro_share", condition)
        n_amb = n_amb or 0
        if n_pro + n_amb > k:
            raise ConfigError(f"condition '{condition}': pro_share + ambiguous_share exceed 1")
        wanted = {"pro": n_pro, "anti": k - n_pro - n_amb, "ambig": n_amb}
    elif n_amb is not None:
        wanted = {"ambig": n_amb, "disambig": k - n_amb}
    usable = [it for it in pool if not it.target_unclear]
    cats = list(categories) if categories else list(dict.fromkeys(it.category for it in usable))
    missing = [c for c in cats if not any(it.category == c for it in usable)]
    if missing:
        raise ConfigError(f"condition '{condition}': no few-shot pool items in category '{missing[0]}'")
    rng = random.Random(f"bbq-shots:{seed}")
    by_cat = {c: rng.sample([it for it in usable if it.category == c], len([it for it in usable if it.category == c]))
              for c in cats}
    cells = []
    if wanted is not None:
        for cell, n in wanted.items():
            cells += [cell] * n
        rng.shuffle(cells)
    else:
        cells = [None] * k
    shots: list[BBQItem] = []
    used: set[tuple[str, int]] = set()
    for j, cell in enumerate(cells):
        cat = cats[j % len(cats)]
        pick = next((it for it in by_cat[cat] if it.key not in used and (cell is None or _cell(it) == cell
                     or (cell == "disambig" and it.context_condition == "disambig"))), None)
        if pick is None:
            raise ConfigError(f"condition '{condition}': not enough '{cell or 'any'}' shots in category '{cat}' of the pool")
        used.add(pick.key)
        shots.append(pick)
    return shots
