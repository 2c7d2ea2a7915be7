"""BBQ behind the audit's dataset interface (``--data bbq:SOURCE``).

``SOURCE`` is a directory of the official ``<Category>.jsonl`` files (or its parent holding
``data/`` and ``templates/``) or ``official`` (pinned download), optionally followed by
``#Cat1,Cat2`` to choose categories: ``bbq:../shared/bbq/data#Age,Religion``. A chosen category
without a file is *regenerated from the official templates* (seeded; labelled so in every item and
summary). Without ``#``, every category found in the directory is used.

Choices: a selection is the chosen answer's index in the item's own answer order (0..2), as
:mod:`.metrics` expects; ``None`` = no answer. The resampling unit is the 4-item example set
(:func:`.intervals.set_key`); the transfer correlation runs over templates (``Category:Q_id``).

Prompt formats are ``bbq_intrinsic``, ``bbq_zero_shot``, ``bbq_chain_of_thought``, ``bbq_explain``;
a bare name (``zero_shot``) means its ``bbq_`` format, so a WinoBias condition table runs on BBQ.
``order`` k lists the options cyclically rotated by k (:func:`.prompts.option_order`).
"""

from __future__ import annotations

import functools
import random
from typing import Any, Mapping, Sequence

from audit.datasets.base import SHARE_KNOB, ConditionKnob, Dataset, EstimatesChart
from audit.errors import ConfigError, DataError
from audit.prompts.render import Prompt

from . import index, load_bbq
from .answers import map_bbq_answer
from .intervals import paired_changes, set_key, summarize_with_intervals, template_key
from .items import BBQItem
from .metrics import accuracy, s_amb, s_dis, selection_bias_per_template
from .official import BBQ_CATEGORIES
from .prompts import render_bbq


def parse_source(source: str) -> tuple[str, list[str] | None]:
    """``DIR#Age,Religion`` -> (DIR, ["Age", "Religion"]); no ``#`` -> (DIR, None)."""
    where, sep, cats = source.partition("#")
    if not where:
        raise DataError("--data bbq:SOURCE: give a directory of the official files, or 'official' (e.g. bbq:path/to/BBQ/data)")
    if not sep:
        return where, None
    chosen = [c.strip() for c in cats.split(",") if c.strip()]
    if not chosen:
        raise DataError(f"--data bbq:{source}: no category after '#' (known: {', '.join(BBQ_CATEGORIES)})")
    unknown = [c for c in chosen if c not in BBQ_CATEGORIES]
    if unknown:
        raise DataError(f"--data bbq:{source}: unknown BBQ category '{unknown[0]}' (known: {', '.join(BBQ_CATEGORIES)})")
    return where, chosen


@functools.lru_cache(maxsize=8)
def _load(source: str, split: str | None, seed: int) -> tuple[BBQItem, ...]:
    """The items of a run: the whole data is checked by the validation `bias-audit data validate` runs
    (one check for both: `run` refuses what `validate` refuses), then the split is taken."""
    from . import _in_dev
    from .validate import validate

    where, categories = parse_source(source)
    data = load_bbq(where, categories, split=None, seed=seed)
    report = validate(data)
    if not report["ok"]:
        first = next(e for c in report["categories"].values() for e in c["errors"])
        raise DataError(f"{first} ({report['errors']} errors in the BBQ data; `bias-audit data validate {where}` "
                        "lists them)")
    return tuple(item for items in data.values() for item in items
                 if split is None or _in_dev(item, seed) == (split == "dev"))


def _bias_chart(index: int, model: str, conditions: list[dict]) -> EstimatesChart | None:
    """s_AMB and s_DIS of every category (rows) under every condition (markers), with their intervals."""
    categories = list(dict.fromkeys(r["category"] for c in conditions for r in c["rows"]))
    if not categories:
        return None

    def series(metric: str) -> dict:
        return {c["name"]: {r["category"]: (r[metric]["value"], *(r[metric]["ci"] or (None, None))) for r in c["rows"]}
                for c in conditions}

    panels = tuple({"label": label, "series": series(metric), "reference": (0.0, "0 = no bias"), "xlim": (-1.02, 1.02)}
                   for metric, label in (("s_amb", "s_AMB (ambiguous contexts)"), ("s_dis", "s_DIS (disambiguated contexts)")))
    return EstimatesChart(f"bbq-m{index}", f"Bias score per category, {model}", tuple(categories), panels,
                          row_noun="category", series_noun="condition",
                          caption="Dots are the bias scores, bars their intervals over example sets, one marker per "
                                  "condition; 0 is no bias, +1 always the stereotype, -1 always against it.")


class BBQ(Dataset):
    bias_gate = "bbq_s_amb"
    headline_bias = "a_sb"
    # share of stereotype-consistent disambiguated shots, share of ambiguous-context shots, the categories
    # shots are drawn from: the keys BBQ's few-shot composer reads, so each condition's record names them
    condition_knobs = {"pro_share": SHARE_KNOB, "ambiguous_share": SHARE_KNOB,
                       "shot_categories": ConditionKnob(list[str] | None, None)}
    default_preset = "bbq"
    report_title = "Social bias audit (BBQ)"
    report_sections = (("report/bbq.html.j2", "bbq-categories", "Categories"),)  # the A-SB analogue over templates (mean |O-SB| of each template)
    answer_orders = 3  # cyclic rotations of the three options
    formats_prefix = "bbq_"

    # --- items -----------------------------------------------------------------------------------
    def check_source(self, source: str) -> None:
        parse_source(source)

    def load(self, source: str, *, split: str | None, seed: int) -> list[BBQItem]:
        items = list(_load(source, split, seed))
        index.remember(items)
        return items

    def options(self, item: BBQItem) -> tuple[str, ...]:
        return item.answers

    def gold(self, item: BBQItem) -> int:
        return item.label

    def report_view(self, results):
        """Per model and condition, each category's s_AMB, s_DIS and the ambiguous and disambiguated
        accuracies with their intervals (over example sets), as recorded."""
        metrics = ("s_amb", "s_dis", "accuracy_ambig", "accuracy_disambig")
        models = []
        for model in results.get("models") or []:
            conditions = []
            for name, cond in (model.get("conditions") or {}).items():
                categories = cond.get("categories") if isinstance(cond, Mapping) else None
                if not isinstance(categories, Mapping):
                    continue
                rows = [{"category": str(cat), "examples": entry.get("examples"), "source": entry.get("source", ""),
                         **{m: {"value": entry.get(m), "ci": entry.get(f"{m}_ci")} for m in metrics}}
                        for cat, entry in categories.items() if isinstance(entry, Mapping)]
                conditions.append({"name": str(name), "rows": rows})
            models.append({"name": str(model.get("name")), "conditions": conditions,
                           "chart": _bias_chart(len(models), str(model.get("name")), conditions)})
        return {"models": models}

    report_table_header = ("s_AMB [95% CI]", "s_DIS [95% CI]", "accuracy ambiguous/disambiguated")

    def report_table_cells(self, cond):
        """The terminal table's columns: the bias scores over every category, and both accuracies."""
        from audit.datasets.report_data import Estimate, Number

        o = cond.get("overall") if isinstance(cond.get("overall"), Mapping) else {}
        return ((Estimate(o.get("s_amb"), o.get("s_amb_ci"), sign=True),), (Estimate(o.get("s_dis"), o.get("s_dis_ci"), sign=True),),
                (Number(o.get("accuracy_ambig"), 2, missing="n/a"), "/", Number(o.get("accuracy_disambig"), 2, missing="n/a")))

    def record_pair_key(self, item_id, item):
        """The example set of a recorded item (category, example_id // 4), as ``pair_key``."""
        try:
            return (str(item.get("category")), int(item.get("example_id")) // 4)
        except (TypeError, ValueError):
            return item_id

    def pair_key(self, item: BBQItem):
        return set_key(item)

    def subsample(self, items: Sequence[BBQItem], n: int, *, seed: int = 0) -> list[BBQItem]:
        """About ``n`` items, whole example sets at a time, seeded, keeping BBQ's counterbalance: sets are
        taken in pairs from one template, one whose disambiguated context names the stereotyped person as
        the answer to the negative question and one that names the other person (see
        :func:`.intervals.design_stratum`), spread evenly over the categories (round robin). A random
        subsample would unbalance them, and then even an accurate, unbiased model would get s_DIS != 0."""
        from .intervals import design_stratum

        sets: dict = {}
        for i, it in enumerate(items):
            sets.setdefault(set_key(it), []).append(i)
        by_stratum: dict = {}
        for key, idx in sets.items():
            by_stratum.setdefault(design_stratum([items[i] for i in idx]), []).append(key)
        rng = random.Random(seed)
        pairs_by_category: dict[str, list] = {}
        for (template, flag), keys in sorted(by_stratum.items(), key=lambda kv: repr(kv[0])):
            if flag is not True:
                continue
            others = list(by_stratum.get((template, False), []))
            mine = list(keys)
            rng.shuffle(mine)
            rng.shuffle(others)
            pairs_by_category.setdefault(template.split(":")[0], []).extend(zip(mine, others))
        for pairs in pairs_by_category.values():
            rng.shuffle(pairs)
        # round robin over the categories, so that each gets its share of n (until it runs out of pairs)
        queues = [pairs_by_category[c] for c in sorted(pairs_by_category)]
        keep: list[int] = []
        depth = 0
        while len(keep) < n and any(depth < len(q) for q in queues):
            for q in queues:
                if depth < len(q) and len(keep) < n:
                    for key in q[depth]:
                        keep += sets[key]
            depth += 1
        return [items[i] for i in sorted(keep)]

    def item_id(self, item: BBQItem) -> str:
        return f"{item.category}-{item.example_id}"

    # --- prompts ---------------------------------------------------------------------------------
    def shots(self, pool: Sequence[BBQItem], condition, seed: int, name: str) -> list[BBQItem]:
        from .shots import compose_bbq_shots

        if condition.occupations != "any" or condition.male_share is not None:
            raise ConfigError(f"condition '{name}': occupations and male_share are WinoBias composition keys; "
                              "BBQ takes pro_share, ambiguous_share and shot_categories")
        return compose_bbq_shots(pool, condition.shots, seed=seed, pro_share=condition.pro_share,
                                 ambiguous_share=condition.ambiguous_share, categories=condition.shot_categories,
                                 condition=name)

    def render(self, fmt: str, item: BBQItem, shots: Sequence[BBQItem], preprompt: str, order: int = 0) -> Prompt:
        fmt = fmt if fmt.startswith(self.formats_prefix) else self.formats_prefix + fmt
        p = render_bbq(fmt, item, shots, preprompt, rotation=order)
        return Prompt(p.prefix, p.query)

    def select(self, item: BBQItem, scores: Sequence[float]) -> int | None:
        best = max(scores)
        if sum(s == best for s in scores) > 1:
            return None
        return list(scores).index(best)

    def map_answer(self, text: str, item: BBQItem) -> int | None:
        return map_bbq_answer(text, item)

    # --- metrics ---------------------------------------------------------------------------------
    def per_seed(self, items: Sequence[BBQItem], selections: Sequence) -> dict[str, float]:
        out: dict[str, float] = {}
        for category in dict.fromkeys(it.category for it in items):
            its = [it for it in items if it.category == category]
            sels = [s for it, s in zip(items, selections) if it.category == category]
            out[f"{category}.s_amb"] = s_amb(its, sels)
            out[f"{category}.s_dis"] = s_dis(its, sels)
            out[f"{category}.accuracy_ambig"] = accuracy(its, sels, "ambig")
            out[f"{category}.accuracy_disambig"] = accuracy(its, sels, "disambig")
        return out

    def summarize(self, items: Sequence[BBQItem], selections: Sequence, boot: Mapping[str, Any]) -> dict:
        """Per category accuracy (ambig/disambig), s_DIS, s_AMB and the A-SB analogue, each with an interval
        over example sets; per-template selection bias; which categories were regenerated from templates."""
        summary = summarize_with_intervals(items, selections, **boot)
        regenerated = sorted({it.category for it in items if it.regenerated})
        for name, entry in summary["categories"].items():
            entry["source"] = "regenerated from templates" if name in regenerated else "official file"
            entry["examples"] = sum(1 for it in items if it.category == name)
        summary["regenerated_from_templates"] = regenerated
        return summary

    def bias_by_unit(self, items: Sequence[BBQItem], selections: Sequence) -> dict[str, float | None]:
        """Per-template selection bias (O-SB analogue), keyed ``Category:Q_id``."""
        out: dict[str, float | None] = {}
        for category in dict.fromkeys(it.category for it in items):
            its = [it for it in items if it.category == category]
            sels = [s for it, s in zip(items, selections) if it.category == category]
            for q, value in selection_bias_per_template(its, sels).items():
                out[f"{category}:{q}"] = value
        return out

    def paired_change(self, before: tuple[Sequence, Sequence], after: tuple[Sequence, Sequence],
                      boot: Mapping[str, Any]) -> dict:
        return paired_changes(before, after, **boot)

    def bias_change(self, before: tuple[Sequence, Sequence], after: tuple[Sequence, Sequence], boot: Mapping[str, Any]):
        """theta^2 of the per-template selection bias after minus before (``.debiasing``: noise removed, units
        paired): not the mean |O-SB| over templates, which a strategy that only adds random errors raises."""
        from .debiasing import theta2_change

        change, ci, theta0, theta1 = theta2_change(before, after, confidence=boot["confidence"],
                                                   n_resamples=boot["n_resamples"], seed=boot["seed"])
        return change, ci, f"theta (RMS per-template selection bias, noise removed) {theta0:.3f} -> {theta1:.3f}"

    def corrected_transfer(self, before: tuple[Sequence, Sequence], after: tuple[Sequence, Sequence],
                           boot: Mapping[str, Any]) -> dict:
        """The per-template selection bias's transfer corrected for the noise both conditions share
        (``.transfer``): a model answering alike everywhere no longer reads rho = 1 from its noise."""
        from .transfer import corrected_transfer

        return corrected_transfer(before, after, self.item_id, boot)

    def simulator(self, items: Sequence[BBQItem], config):
        from .simulator import BBQSimulator

        return BBQSimulator(items)

    def report_item(self, item: Mapping[str, Any]) -> Mapping[str, str]:
        """Context, question and the three answers; the block is category, context condition and polarity."""
        if not item:
            return {"text": "(item not in the record)", "mark": "", "block": "", "gold": ""}
        answers = [str(a) for a in item.get("answers") or ()]
        shown = " ".join(f"({'abc'[i]}) {a}" for i, a in enumerate(answers[:3]))
        label = item.get("label")
        gold = answers[label] if isinstance(label, int) and 0 <= label < len(answers) else ""
        block = ", ".join(str(item[k]) for k in ("category", "context_condition", "question_polarity") if item.get(k))
        return {"text": f"{item.get('context', '')} {item.get('question', '')} {shown}".strip(), "mark": "",
                "block": block, "gold": gold}

    def record_extras(self, items: Sequence[BBQItem]) -> dict:
        regenerated = sorted({it.category for it in items if it.regenerated})
        return {"bbq": {
            "categories": list(dict.fromkeys(it.category for it in items)),
            "regenerated_from_templates": regenerated,
            "templates": sorted({template_key(it) for it in items}),
            "attribution": ATTRIBUTION,
        }}

    def validate(self, directory: str):
        from .validate import render_text, validate

        where, categories = parse_source(directory)
        return _Report(validate(load_bbq(where, categories)), render_text)


class _Report:
    """The validation report as ``bias-audit data validate`` prints it."""

    def __init__(self, report: dict, render):
        self._report, self._render = report, render
        self.ok = report["ok"]

    def to_dict(self) -> dict:
        return self._report

    def format_text(self) -> str:
        return self._render(self._report)


ATTRIBUTION = (
    "BBQ (Bias Benchmark for QA) by Alicia Parrish, Angelica Chen, Nikita Nangia, Vishakh Padmakumar, Jason Phang, "
    "Jana Thompson, Phu Mon Htut and Samuel R. Bowman (https://github.com/nyu-mll/BBQ), licensed under CC BY 4.0 "
    "(https://creativecommons.org/licenses/by/4.0/). Modified: categories marked \"regenerated from templates\" were "
    "regenerated by this tool's seeded port of the BBQ generator from the official templates and are not the official "
    "files; answers are scored by this tool."
)

