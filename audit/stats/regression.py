"""Comparing a run with an approved earlier run (its results.json): has a metric got significantly worse?"""

from __future__ import annotations

from typing import Callable, Hashable, Sequence

from audit.stats.bootstrap import paired_mean_change


def approved_condition(approved: dict, model: str, condition: str) -> tuple[dict, list[dict]] | None:
    """The approved run's summary and choices for a model and condition, or None when it has none."""
    for entry in approved.get("models", []):
        if entry.get("name") == model and condition in entry.get("conditions", {}):
            return entry["conditions"][condition], entry.get("choices", {}).get(condition, [])
    return None


def mean_abs_change(new_by_unit: dict, old_by_unit: dict, **boot) -> tuple[float, tuple[float, float]]:
    """Paired over the units measured in both runs: mean of |bias| now minus |bias| before (= the change
    in the mean absolute per-unit bias), with a percentile interval over units."""
    shared = [u for u in new_by_unit if new_by_unit[u] is not None and old_by_unit.get(u) is not None]
    return paired_mean_change([abs(new_by_unit[u]) - abs(old_by_unit[u]) for u in shared], **boot)


def accuracy_drop(
    items: Sequence, selections: Sequence, old_choices: list[dict], *, item_id: Callable, correct: Callable,
    key: Callable[[object], Hashable], **boot,
) -> tuple[float, tuple[float, float]]:
    """Paired over items answered in both runs: correct before minus correct now (= the accuracy drop),
    resampling the dataset's pairs together."""
    old = {c["item"]: c for c in old_choices if c.get("selected") is not None}
    diffs, clusters = [], []
    for item, sel in zip(items, selections):
        before = old.get(item_id(item))
        if sel is None or before is None:
            continue
        diffs.append(float(bool(before["correct"])) - float(correct(item, sel)))
        clusters.append(key(item))
    return paired_mean_change(diffs, clusters, **boot)
