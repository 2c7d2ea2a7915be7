"""WinoBias (Zhao et al., NAACL 2018): pronoun co-reference with two candidate occupations, the gender
bias benchmark of Mackraz et al. 2024. Sources: ``generated`` (our templated benchmark, offline),
``winobias`` (the official files: cache, pinned download, hub) or a directory of the official files.

Modules: ``items`` (the Item), ``official`` (the official-format parser and validator), ``generated``,
``occupations`` (the 40 occupations and their labour statistics), ``sources`` (loading), ``shots``
(few-shot composition), ``answers`` (mapping generations), ``metrics`` (O-SB, A-SB, RPA), ``gates``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from audit.datasets.base import Dataset
from audit.datasets.winobias import metrics as m
from audit.datasets.winobias.answers import map_answer
from audit.datasets.winobias.items import Item
from audit.datasets.winobias.occupations import occupations
from audit.datasets.winobias.shots import compose_shots
from audit.datasets.winobias.sources import load_items
from audit.stats.bootstrap import bootstrap_interval


class WinoBias(Dataset):
    bias_gate = "a_sb"

    def load(self, source: str, *, split: str | None, seed: int) -> list[Item]:
        return load_items(source, split=split, seed=seed)

    def options(self, item: Item) -> tuple[str, ...]:
        return item.candidates

    def gold(self, item: Item) -> str:
        return item.referent

    def pair_key(self, item: Item):
        return m.twin_key(item)

    def shots(self, pool: Sequence[Item], condition, seed: int, name: str) -> list[Item]:
        if condition.ambiguous_share is not None or condition.shot_categories is not None:
            from audit.errors import ConfigError

            raise ConfigError(f"condition '{name}': ambiguous_share and shot_categories are BBQ composition keys")
        return compose_shots(pool, condition.shots, seed=seed, pro_share=condition.pro_share,
                             occupations=condition.occupations, male_share=condition.male_share, condition=name)

    def map_answer(self, text: str, item: Item) -> str | None:
        return map_answer(text, item.candidates)

    def per_seed(self, items: Sequence[Item], selections: Sequence) -> dict[str, float]:
        return {"a_sb": m.a_sb_of(items, selections), "rpa_gap": m.rpa_gap_of(items, selections)}

    def summarize(self, items: Sequence[Item], selections: Sequence, boot: Mapping[str, Any]) -> dict:
        """A-SB with its interval, O-SB per occupation, and RPA (overall, pro/anti, by type, the gap's interval)."""
        o_sb = m.occupational_selection_bias(items, selections)
        rpa = m.referent_prediction_accuracy(items, selections)
        rpa["gap_ci"] = list(bootstrap_interval(items, selections, m.rpa_gap_of, key=m.twin_key, **boot))
        return {
            "a_sb": m.aggregate_selection_bias(o_sb),
            "a_sb_ci": list(bootstrap_interval(items, selections, m.a_sb_of, key=m.twin_key, **boot)),
            "o_sb": o_sb,
            "rpa": rpa,
        }

    def bias_by_unit(self, items: Sequence[Item], selections: Sequence) -> dict[str, float | None]:
        return m.occupational_selection_bias(items, selections)

    def record_extras(self, items: Sequence[Item]) -> dict:
        return {"occupations": [{"name": o.name, "stereotype": o.stereotype, "pct_women": o.pct_women} for o in occupations()]}

    def validate(self, directory: str):
        from audit.datasets.winobias.official import validate_winobias_dir

        return validate_winobias_dir(directory)
