"""Where a condition's few-shot examples come from: always a split the audited item is not in.

With one split audited (config ``split = "dev"`` or ``"test"``) every item's shots come from the other
split, the same shots for every item (the pool is a plain list). With both audited (``split = "all"``)
the audit cross-fits: the pool is a ``CrossSplitPool`` and each item draws its shots from the split it
is *not* in, so no item ever sees itself, its twin (twins share a split) or any item of its own split
among its shots. Each split's items get the shots a one-split audit of that split would draw (same seed,
same composition), so the prompts, and the run, are deterministic under the seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from audit.errors import AuditError

SPLITS = ("dev", "test")


@dataclass(frozen=True)
class CrossSplitPool:
    """The shot pools of an audit of both splits: ``by_split[s]`` holds split ``s``'s items (the pool of
    the other split's items); ``split_of`` maps an item's id to its split."""

    by_split: dict[str, list]
    split_of: dict[str, str]

    @classmethod
    def of(cls, dataset, by_split: dict[str, list]) -> "CrossSplitPool":
        split_of: dict[str, str] = {}
        for split, items in by_split.items():
            for item in items:
                item_id = dataset.item_id(item)
                if item_id in split_of:
                    raise AuditError(f"item id '{item_id}' occurs in more than one split (or twice); split = 'all' "
                                     "needs ids unique across the splits")
                split_of[item_id] = split
        return cls(by_split, split_of)

    def other(self, split: str) -> list:
        """The shot pool of an item of ``split``: every item of the other split."""
        return self.by_split["test" if split == "dev" else "dev"]


def without_repeats(dataset, dev: Sequence, test: Sequence) -> tuple[list, int]:
    """The dev items that do not repeat a test item's question (``Dataset.question_key``), and how many did:
    an audit of both splits counts each question once (its test copy). The dev split stays whole as the
    test items' shot pool, so their shots are those an audit of the test split alone would draw."""
    asked = {k for k in map(dataset.question_key, test) if k is not None}
    kept = [it for it in dev if dataset.question_key(it) not in asked]  # None (no key) is never in asked
    return kept, len(dev) - len(kept)


def shot_folds(dataset, items: Sequence, pool) -> list[tuple[list[int], Sequence]]:
    """(positions in ``items``, their shot pool) for each group of items sharing a pool: one group for a
    plain pool, one per split for a ``CrossSplitPool``."""
    if not isinstance(pool, CrossSplitPool):
        return [(list(range(len(items))), pool)]
    positions: dict[str, list[int]] = {}
    for k, item in enumerate(items):
        split = pool.split_of.get(dataset.item_id(item))
        if split is None:
            raise AuditError(f"item '{dataset.item_id(item)}' is in no audited split: its few-shot pool is unknown")
        positions.setdefault(split, []).append(k)
    return [(positions[s], pool.other(s)) for s in SPLITS if s in positions]


def item_shots(dataset, pool, cond, seed: int, name: str, items: Sequence) -> list[list]:
    """Each item's shots under a condition and seed (drawn once per pool, as ``Dataset.shots`` draws them)."""
    out: list[list] = [[] for _ in items]
    for positions, fold_pool in shot_folds(dataset, items, pool):
        shots = dataset.shots(fold_pool, cond, seed, name)
        for k in positions:
            out[k] = shots
    return out


def check_pools(pool) -> list[Sequence]:
    """Every pool a condition may draw shots from (``audit.run.conditions.check_condition`` tries each)."""
    return [pool.other(s) for s in SPLITS] if isinstance(pool, CrossSplitPool) else [pool]
