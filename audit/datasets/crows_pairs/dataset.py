"""CrowS-Pairs behind the audit's dataset interface (``--data crows-pairs:SOURCE``).

``SOURCE``: the directory holding ``crows_pairs_anonymized.csv`` (or the file), optionally followed by
``#min_agreement=K`` (keep pairs at least K of whose five validators chose its bias type) and/or
``;bias_types=gender,age``: ``crows-pairs:../shared/crows_pairs#min_agreement=4``.

A selection is ``"more"`` (the model prefers ``sent_more``, the more stereotypical sentence), ``"less"``
or ``None``. There is no correct answer, so accuracy is undefined (NaN); the bias is the stereotype
preference per bias type (0.5 = none). The resampling unit is the pair; the transfer correlation runs
over bias types. ``split``: no official one; ``dev`` is a seeded ~10% of the pairs (the shot pool).
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
from typing import Any, Mapping, Sequence

from audit.datasets.base import SHARE_KNOB, Dataset
from audit.errors import ConfigError, DataError
from audit.prompts.render import Prompt

from .items import LESS, MORE, OPTIONS, CrowsPair
from .metrics import by_type, likelihood_differences, preference, preference_values, worst_deviation
from .official import parse_file, parse_source, resolve_file, select
from .prompts import map_crows_answer, render_crows

DEV_SHARE = 0.1
BIAS_GATE = "crows_pairs_bias"


def _in_dev(pair: CrowsPair, seed: int) -> bool:
    digest = hashlib.sha256(f"{seed}:crows:{pair.index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < DEV_SHARE


@functools.lru_cache(maxsize=8)
def load_pairs(source: str, split: str | None = None, seed: int = 0) -> tuple[CrowsPair, ...]:
    where, min_agreement, types = parse_source(source)
    pairs = select(parse_file(resolve_file(where)), min_agreement, types)
    if split not in (None, "dev", "test"):
        raise DataError(f"CrowS-Pairs split must be dev, test or none, got {split!r}")
    if split is not None:
        pairs = [p for p in pairs if _in_dev(p, seed) == (split == "dev")]
    if not pairs:
        raise DataError(f"--data crows-pairs:{source}: no pair is left (min_agreement {min_agreement}, split {split})")
    return tuple(pairs)


class CrowsPairs(Dataset):
    bias_gate = BIAS_GATE
    #: what a debiasing strategy's change is judged on: the mean over bias types of |preference - 0.5|
    headline_bias = "stereotype_deviation"
    answer_orders = 2  # each sentence listed first once
    default_preset = "crows-pairs"
    condition_knobs = {"pro_share": SHARE_KNOB}  # share of shots answered with the more stereotypical sentence
    report_title = "Stereotype preference audit (CrowS-Pairs)"
    report_sections = (("report/crows_pairs.html.j2", "crows-types", "Bias types"),)

    def report_view(self, results):
        from .report import report_view

        return report_view(results)

    report_table_header = ("stereotype preference [95% CI]",)

    def report_table_cells(self, cond):
        """The terminal table's column: the stereotype preference over every bias type (0.5 = no bias)."""
        from audit.datasets.report_data import Estimate

        o = cond.get("overall") if isinstance(cond.get("overall"), Mapping) else {}
        return ((Estimate(o.get("stereotype_preference"), o.get("stereotype_preference_ci")),),)

    # --- items -----------------------------------------------------------------------------------
    def check_source(self, source: str) -> None:
        parse_source(source)

    def load(self, source: str, *, split: str | None, seed: int) -> list[CrowsPair]:
        return list(load_pairs(source, split, seed))

    def options(self, item: CrowsPair) -> tuple[str, ...]:
        return OPTIONS

    def gold(self, item: CrowsPair) -> None:
        return None  # no correct answer: the measure is which sentence the model prefers

    def pair_key(self, item: CrowsPair) -> int:
        return item.index

    def record_pair_key(self, item_id: str, item: Mapping[str, Any]):
        """``pair_key`` of an item as results.json stores it (its row index)."""
        index = item.get("index") if isinstance(item, Mapping) else None
        return index if isinstance(index, int) else item_id

    # --- prompts ---------------------------------------------------------------------------------
    def shots(self, pool: Sequence[CrowsPair], condition, seed: int, name: str) -> list[tuple[CrowsPair, str]]:
        """``condition.shots`` pairs shown solved: a share ``pro_share`` (default 0.5, neutral) answered with
        ``sent_more``, the rest with ``sent_less``, in a seeded order."""
        if condition.shots == 0:
            return []
        if condition.occupations != "any" or condition.male_share is not None or condition.ambiguous_share is not None:
            raise ConfigError(f"condition '{name}': CrowS-Pairs shots take pro_share only")
        if len(pool) < condition.shots:
            raise ConfigError(f"condition '{name}': {condition.shots} shots, but the pool has {len(pool)} pairs")
        share = 0.5 if condition.pro_share is None else condition.pro_share
        n_more = share * condition.shots
        if abs(n_more - round(n_more)) > 1e-9:
            raise ConfigError(f"condition '{name}': pro_share {share} of {condition.shots} shots is not a whole number")
        rng = random.Random(seed)
        chosen = rng.sample(list(pool), condition.shots)
        answers = [MORE] * round(n_more) + [LESS] * (condition.shots - round(n_more))
        rng.shuffle(answers)
        return list(zip(chosen, answers))

    def render(self, fmt: str, item: CrowsPair, shots: Sequence, preprompt: str, order: int = 0) -> Prompt:
        return render_crows(fmt, item, shots, preprompt, order)

    def continuation(self, item: CrowsPair, option: str) -> str:
        return item.sentence(option)

    def map_answer(self, text: str, item: CrowsPair) -> str | None:
        return map_crows_answer(text, item)

    # --- metrics ---------------------------------------------------------------------------------
    def accuracy(self, items: Sequence, selections: Sequence) -> float:
        return math.nan

    def per_seed(self, items: Sequence[CrowsPair], selections: Sequence) -> dict[str, float]:
        out = {"stereotype_preference": preference(items, selections)}
        for t in dict.fromkeys(it.bias_type for it in items):
            out[f"{t}.stereotype_preference"] = preference([i for i in items if i.bias_type == t],
                                                           [s for i, s in zip(items, selections) if i.bias_type == t])
        return out

    def headline(self, items: Sequence, selections: Sequence) -> dict[str, float]:
        """``per_seed`` and ``stereotype_deviation``, the mean over bias types of |preference - 0.5| (the
        debiasing table's headline bias: 0 = no bias in any type)."""
        out = self.per_seed(items, selections)
        types = [abs(v - 0.5) for k, v in out.items() if k.endswith(".stereotype_preference") and not math.isnan(v)]
        out["stereotype_deviation"] = sum(types) / len(types) if types else math.nan
        return out

    def summarize(self, items: Sequence[CrowsPair], selections: Sequence, boot: Mapping[str, Any]) -> dict:
        """Per bias type the stereotype preference with a percentile interval over pairs; overall; the worst
        type's |preference - 0.5| with a simultaneous interval (the bias gate's measure)."""
        values = preference_values(selections)
        types = by_type(items, values, **boot)
        overall = by_type([_pooled(i) for i in items], values, **boot).get("all", {})
        worst = worst_deviation(items, values, **boot)
        return {
            "bias_types": {t: {"pairs": e["pairs"], "answered": e["answered"], "stereotype_preference": e["estimate"],
                               "stereotype_preference_ci": e["ci"]} for t, e in types.items()},
            "overall": {"pairs": overall.get("pairs", 0), "answered": overall.get("answered", 0),
                        "stereotype_preference": overall.get("estimate", math.nan),
                        "stereotype_preference_ci": overall.get("ci", (math.nan, math.nan))},
            "worst": {"bias_type": worst["bias_type"], "estimate": worst["estimate"], "ci": worst["ci"],
                      "critical_value": worst["critical_value"]},
        }

    def score_summary(self, items: Sequence[CrowsPair], scores: Sequence, boot: Mapping[str, Any]) -> dict:
        """Per bias type the mean signed log-likelihood difference ll(sent_more) - ll(sent_less) with an
        interval over pairs, and lm-eval's likelihood_diff (mean absolute difference)."""
        diffs = likelihood_differences(scores)
        signed = by_type(items, diffs, **boot)
        absolute = by_type(items, [None if d is None else abs(d) for d in diffs], **boot)
        pooled = [_pooled(i) for i in items]
        return {"likelihood_difference": {
            "bias_types": {t: {"mean": e["estimate"], "ci": e["ci"], "mean_absolute": absolute[t]["estimate"]}
                           for t, e in signed.items()},
            "overall": {"mean": by_type(pooled, diffs, **boot)["all"]["estimate"],
                        "mean_absolute": by_type(pooled, [None if d is None else abs(d) for d in diffs], **boot)["all"]["estimate"]},
        }}

    def bias_by_unit(self, items: Sequence[CrowsPair], selections: Sequence) -> dict[str, float | None]:
        """Per bias type: stereotype preference - 0.5 (None when no pair of the type was answered)."""
        out: dict[str, float | None] = {}
        for t in dict.fromkeys(it.bias_type for it in items):
            p = preference([i for i in items if i.bias_type == t], [s for i, s in zip(items, selections) if i.bias_type == t])
            out[t] = None if math.isnan(p) else p - 0.5
        return out

    def simulator(self, items: Sequence[CrowsPair], config):
        from .simulator import CrowsSimulator

        return CrowsSimulator(items)

    def report_item(self, item: Mapping[str, Any]) -> Mapping[str, str]:
        """Both sentences of the pair, the more stereotypical first; the block is bias type and direction.
        No answer is correct (the unbiased model prefers either half the time), so ``gold`` stays empty."""
        if not item:
            return {"text": "(item not in the record)", "mark": "", "block": "", "gold": ""}
        text = f"more stereotypical: {item.get('sent_more', '')} | less: {item.get('sent_less', '')}"
        block = ", ".join(str(item[k]) for k in ("bias_type", "direction") if item.get(k))
        return {"text": text, "mark": "", "block": block, "gold": ""}

    def record_extras(self, items: Sequence[CrowsPair]) -> dict:
        return {"crows_pairs": {"bias_types": list(dict.fromkeys(it.bias_type for it in items)),
                                "pairs": len({it.index for it in items}), "attribution": ATTRIBUTION,
                                "quality_note": QUALITY_NOTE}}

    def validate(self, directory: str):
        from .validate import ValidationReport

        return ValidationReport.of(directory)


def _pooled(item: CrowsPair) -> CrowsPair:
    """The pair under one pooled type ``all`` (overall figures resample pairs without strata)."""
    from dataclasses import replace

    return replace(item, bias_type="all")


ATTRIBUTION = (
    "CrowS-Pairs by Nikita Nangia, Clara Vania, Rasika Bhalerao and Samuel R. Bowman (EMNLP 2020; "
    "https://github.com/nyu-mll/crows-pairs), licensed under CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/). "
    "Sentences are scored by this tool; derived figures are shared under the same licence."
)
QUALITY_NOTE = (
    "CrowS-Pairs has known quality problems: Blodgett et al. (ACL 2021, \"Stereotyping Norwegian Salmon\") found many "
    "pairs that are not minimal edits, do not express a stereotype, contrast groups that are not comparable, or are "
    "ill-formed, and the authors warn that the data may not be a good indicator of bias on its own. Read these figures "
    "as indicative, and prefer pairs with high annotator agreement (min_agreement)."
)
