"""The dataset interface: what the audit needs to know about a benchmark.

A dataset loads its items, says which answer options each item offers and which is correct, how
items pair for resampling (the design's unit, e.g. WinoBias's gender-swapped twins), renders an
item in a prompt format, maps a generated answer to an option, and contributes its metrics to a
condition's summary and its per-unit bias values to the transfer correlation (occupations for
WinoBias, templates for BBQ). Everything else (prompts, scoring, bootstrap, gates, the record) is
shared.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Annotated, Any, Hashable, Iterable, Mapping, Sequence

from pydantic import Field

from audit.datasets.report_charts import EstimatesChart  # noqa: F401  (the charts a report view declares)
from audit.prompts.render import Prompt, render_prompt

Selection = Any  # the option a model chose (None: no answer, "other")


@dataclass(frozen=True)
class ConditionKnob:
    """A few-shot composition key that a dataset reads from a condition's table of the config
    (``Dataset.condition_knobs``): its type as the config validates it (a pydantic annotation) and its default."""

    annotation: Any
    default: Any = None


#: a share in [0, 1], unset by default (e.g. ``pro_share``)
SHARE_KNOB = ConditionKnob(Annotated[float | None, Field(ge=0, le=1)], None)


class Dataset(ABC):
    """One benchmark. Subclasses are registered by name (``audit.datasets.register_dataset``)."""

    name: str = ""
    #: how many answer orders a likelihood condition may average over (``answer_orders``; ``render(order=k)``)
    answer_orders: int = 1
    #: the gate whose verdict on the transfer-from condition says the bare model is biased (the transfer
    #: gate applies only then); None: the transfer gate always applies
    bias_gate: str | None = None
    #: the bias metric a debiasing strategy's change is judged on: a key of ``paired_change()["overall"]``
    #: (the ``debiasing_no_increase`` gate); None: that gate is skipped with the reason
    headline_bias: str | None = None
    #: the preset (``presets/NAME.toml`` in a dataset package) a run of several datasets audits this one with
    default_preset: str = "default"
    #: the few-shot composition keys a condition's config table may set for this dataset, each with its type
    #: and default (the config accepts every registered dataset's; this dataset's record leaves the others out)
    condition_knobs: Mapping[str, ConditionKnob] = {}
    #: keys of a condition's summary whose value is an object of numbers (or null) by unit, with the unit's
    #: noun: a results.json holding anything else there is refused when read (``audit.results.check``)
    summary_number_maps: Mapping[str, str] = {}
    #: the keys of a condition's summary recorded before length normalisation too (``normalization``)
    normalization_keys: tuple[str, ...] = ()
    #: the report's title, in the words of this dataset's subject
    report_title: str = "Bias transfer audit"
    #: this dataset's sections of the report: (template fragment under templates/, anchor, navigation label);
    #: the fragments read ``dataset_view`` (``report_view``) and the generic page context
    report_sections: tuple[tuple[str, str, str], ...] = ()
    #: the executive summary's statements in reading order: the generic "verdict" and "open"
    #: (``audit.report.summary.RULES``) and this dataset's own (``report_statement``)
    report_summary_rules: tuple[str, ...] = ("verdict",)
    #: a fragment explaining how to read this dataset's metrics, shown last (None: none)
    report_glossary: str | None = None

    # --- items -----------------------------------------------------------------------------------
    @abstractmethod
    def load(self, source: str, *, split: str | None, seed: int) -> list:
        """The items of ``source`` (the part of ``--data`` after ``NAME:``) in ``split``; DataError on a problem."""

    def configure(self, config) -> None:
        """Take the run's settings that concern this dataset (``audit.config.AuditConfig``); default: none."""

    def check_source(self, source: str) -> None:
        """Validate ``source`` without loading it (default: nothing to check)."""

    @abstractmethod
    def options(self, item) -> tuple[str, ...]:
        """The answer options scored for an item, in a fixed order."""

    @abstractmethod
    def gold(self, item) -> Selection:
        """The correct selection."""

    @abstractmethod
    def pair_key(self, item) -> Hashable:
        """Items sharing a key are resampled together (the design's unit)."""

    def record_pair_key(self, item_id: str, item: Mapping[str, Any]) -> Hashable:
        """``pair_key`` of an item as results.json stores it (``items``), so that two runs' records pair
        their items in the same units (``bias-audit report --approved``); default: each item alone."""
        return item_id

    def item_id(self, item) -> str:
        return item.id

    def question_key(self, item) -> Hashable | None:
        """Equal for two items that put the same question to the model (the same text, options and answer);
        ``split = "all"`` audits such an item once (``audit.run.shot_pools.without_repeats``). Default None:
        every item is its own question."""
        return None

    def item_to_dict(self, item) -> dict:
        return item.to_dict()

    def subsample(self, items: Sequence, n: int, *, seed: int = 0) -> list:
        """About ``n`` items, whole resampling units at a time, seeded, in the original order."""
        groups: dict[Hashable, list[int]] = {}
        for i, item in enumerate(items):
            groups.setdefault(self.pair_key(item), []).append(i)
        keys = list(groups)
        random.Random(seed).shuffle(keys)
        keep: list[int] = []
        for key in keys:
            if len(keep) >= n:
                break
            keep += groups[key]
        return [items[i] for i in sorted(keep)]

    def fingerprint(self, items: Iterable) -> str:
        """SHA-256 of the items' canonical JSON, independent of their order."""
        lines = sorted(json.dumps(self.item_to_dict(i), sort_keys=True, ensure_ascii=False, separators=(",", ":")) for i in items)
        return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()

    # --- prompts ---------------------------------------------------------------------------------
    def shots(self, pool: Sequence, condition, seed: int, name: str) -> list:
        """Solved examples for a few-shot condition (default: the first ``condition.shots`` of a seeded shuffle)."""
        if condition.shots == 0:
            return []
        order = list(pool)
        random.Random(seed).shuffle(order)
        return order[: condition.shots]

    def render(self, fmt: str, item, shots: Sequence, preprompt: str, order: int = 0) -> Prompt:
        """The prompt of ``item``; ``order`` k < ``answer_orders`` lists the options in the k-th order."""
        return render_prompt(fmt, item, shots, preprompt)

    def continuation(self, item, option: str) -> str:
        """The scored text of an option (after a prompt that ends before the answer)."""
        return " " + option

    def select(self, item, scores: Sequence[float]) -> Selection:
        """The option with the highest score; None on a tie (a tie names no option)."""
        best = max(scores)
        if sum(s == best for s in scores) > 1:
            return None
        return self.options(item)[list(scores).index(best)]

    @abstractmethod
    def map_answer(self, text: str, item) -> Selection:
        """The option a generated answer names, or None."""

    # --- metrics ---------------------------------------------------------------------------------
    def correct(self, item, selection: Selection) -> bool:
        return selection is not None and selection == self.gold(item)

    def accuracy(self, items: Sequence, selections: Sequence[Selection]) -> float:
        """Share of answered items answered correctly (NaN when none was answered)."""
        answered = [(it, s) for it, s in zip(items, selections) if s is not None]
        return sum(self.correct(it, s) for it, s in answered) / len(answered) if answered else math.nan

    @abstractmethod
    def summarize(self, items: Sequence, selections: Sequence[Selection], boot: Mapping[str, Any]) -> dict:
        """The dataset's metrics of one condition (merged into the condition's entry of results.json)."""

    def score_summary(self, items: Sequence, scores: Sequence[tuple[float, ...]], boot: Mapping[str, Any]) -> dict:
        """Metrics computed from the options' scores (likelihood probes), merged into the summary; default none."""
        return {}

    def per_seed(self, items: Sequence, selections: Sequence[Selection]) -> dict[str, float]:
        """Headline metrics of one seed (their spread over seeds is reported)."""
        return {}

    @abstractmethod
    def bias_by_unit(self, items: Sequence, selections: Sequence[Selection]) -> dict[str, float | None]:
        """The signed bias of each unit the transfer correlation runs over (None: not measurable)."""

    def corrected_transfer(self, before: tuple[Sequence, Sequence], after: tuple[Sequence, Sequence],
                           boot: Mapping[str, Any]) -> dict | None:
        """The transfer gate's statistic where the dataset has one corrected for measurement noise:
        ``{"defined", "reason", "rho", "rho_ci", ...}`` over units resampled jointly in both conditions
        (each ``(items, selections)``); None: the gate uses the papers' Pearson of ``bias_by_unit``."""
        return None

    def simulator(self, items: Sequence, config):
        """Simulated models of known truth on ``items`` for ``bias-audit calibrate``
        (``audit.run.calibrate.Simulator``); None: this dataset has none."""
        return None

    def headline(self, items: Sequence, selections: Sequence[Selection]) -> dict[str, float]:
        """The metrics a paired change reports (default: ``per_seed`` and accuracy)."""
        return {**self.per_seed(items, selections), "accuracy": self.accuracy(items, selections)}

    def bias_change(self, before: tuple[Sequence, Sequence], after: tuple[Sequence, Sequence],
                    boot: Mapping[str, Any]) -> tuple[float, tuple[float, float], str] | None:
        """(after - before, its interval, what was compared) of the dataset's headline bias, pairs resampled
        jointly; None when the dataset reports no ``headline_bias`` (the debiasing gate then does not apply).
        Datasets with a noise-free estimand override it (WinoBias: theta^2 paired by twin pair)."""
        if self.headline_bias is None:
            return None
        row = self.paired_change(before, after, boot)["overall"].get(self.headline_bias)
        if row is None or row["change"] is None:
            return None
        ci = tuple(float("nan") if v is None else v for v in row["ci"])
        return row["change"], ci, f"{self.headline_bias} {row['before']:.3f} -> {row['after']:.3f}"

    def paired_change(self, before: tuple[Sequence, Sequence], after: tuple[Sequence, Sequence],
                      boot: Mapping[str, Any]) -> dict:
        """``after`` minus ``before`` (each ``(items, selections)`` of one condition) for each headline metric,
        with a percentile interval that resamples the dataset's pairs jointly in both conditions:
        ``{"overall": {metric: {before, after, change, ci}}}`` (BBQ adds ``"categories": {name: {...}}``). Datasets with many items override it with a vectorised one."""
        from audit.stats.paired import paired_resample_change

        return paired_resample_change(before, after, self.headline, key=self.pair_key, **boot)

    def record_extras(self, items: Sequence) -> dict:
        """Top-level additions to results.json (e.g. WinoBias's occupation table)."""
        return {}

    def report_view(self, results: Mapping[str, Any]) -> dict:
        """What this dataset's report sections show, from a results.json record: plain numbers and text
        (the templates format and escape them), number parts (``audit.datasets.report_data``: the report's
        register writes them) and chart declarations (``audit.datasets.report_charts``: the report draws
        them) anywhere in it; ``"hidden"``: the anchors of its sections with nothing to show (left out of
        the page and its navigation); default: nothing."""
        return {}

    def report_item(self, item: Mapping[str, Any]) -> Mapping[str, str]:
        """A recorded item (``results["items"]``, ``{}`` when missing) as the report's item drill-down shows it:
        ``text``, ``mark`` (a word of it to highlight; "" none), ``block`` (its kind) and ``gold`` (the
        correct answer as text); default: the item's ``sentence`` only."""
        return {"text": str(item.get("sentence", "(item not in the record)")), "mark": "", "block": "", "gold": ""}

    # --- the report's summary layer: register of numbers, summary, comparison, terminal table -----
    #: the record fields the report labels and writes beside the transfer r (``report_data.RecordField``)
    report_fields: Mapping[str, Any] = {}
    #: gate metric -> the key of ``report_fields`` its estimate is (checked value by value before use)
    report_gate_fields: Mapping[str, str] = {}
    #: the columns this dataset adds to the terminal and step-summary table after model and condition
    report_table_header: tuple[str, ...] = ()

    def report_statement(self, rule: str, results: Mapping[str, Any], unauditable: Sequence[tuple[str, str]] = ()):
        """This dataset's executive-summary statement ``rule`` (``report_data.Finding``), one of its
        ``report_summary_rules`` beyond the generic ones; ``unauditable``: the (model, condition) pairs
        where the model does not do the task (their bias figures say nothing either way)."""
        raise KeyError(f"dataset '{self.name}' has no summary rule '{rule}'")

    def report_open_questions(self, results: Mapping[str, Any]) -> list[tuple]:
        """What this dataset's own statistics leave undecided: clauses (tuples of ``report_data`` parts) of
        the summary's 'Not concluded' statement; default none."""
        return []

    def report_comparisons(self) -> tuple:
        """The statistics compared with an approved run (``report_data.ComparedQuantity``) beside accuracy."""
        return ()

    def report_table_cells(self, cond: Mapping[str, Any]) -> tuple[tuple, ...]:
        """One cell (a tuple of ``report_data`` parts) per ``report_table_header`` column for a condition."""
        return ()

    def validate(self, directory: str):  # pragma: no cover - optional
        """A validation report of a directory of this dataset's files (``bias-audit data validate``)."""
        raise NotImplementedError(f"dataset '{self.name}' has no validator")
