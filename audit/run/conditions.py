"""Running a condition on a model: render each item's prompt, score its options (or generate and map
the answer), select an option per item, and summarise the condition. Generic over the dataset
(``audit.datasets``) and the backend (``audit.backends``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from audit.backends.base import Backend, Request
from audit.config import AuditConfig, ConditionConfig
from audit.datasets.base import Dataset
from audit.errors import AuditError, ConfigError
from audit.prompts.preprompts import preprompt_text
from audit.prompts.render import Prompt, apply_chat_template
from audit.prompts.stopping import StopRule, rule_for_prompt
from audit.run.shot_pools import check_pools, item_shots
from audit.stats.normalization import normalize_loglikelihood


@dataclass
class ConditionRun:
    """Every item's outcome under one condition, pooled over the condition's seeds."""

    name: str
    config: ConditionConfig
    dataset: Dataset
    items: list = field(default_factory=list)
    selections: list = field(default_factory=list)
    scores: list[tuple[float, ...] | None] = field(default_factory=list)
    outputs: list[str | None] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    per_seed: list[dict[str, float]] = field(default_factory=list)  # the dataset's headline metrics of each seed
    raw_selections: list | None = None  # with normalization set: the selections by summed log-likelihood
    cost: dict | None = None  # what the condition cost (audit.run.cost.CostMeter.cost)

    def bias_by_unit(self) -> dict[str, float | None]:
        return self.dataset.bias_by_unit(self.items, self.selections)

    def choices(self) -> list[dict]:
        ds = self.dataset
        return [
            {"item": ds.item_id(it), "selected": sel, "correct": ds.correct(it, sel), "scores": list(sc) if sc else None, "output": out}
            for it, sel, sc, out in zip(self.items, self.selections, self.scores, self.outputs)
        ]


def _preprompt(cond: ConditionConfig) -> str:
    return cond.preprompt_text if cond.preprompt_text is not None else preprompt_text(cond.preprompt)


def build_prompts(dataset: Dataset, cond: ConditionConfig, items: Sequence, pool: Sequence, seed: int,
                  backend: Backend | None, name: str = "", order: int = 0) -> list[Prompt]:
    """The prompt of each item under a condition, seed and answer order; the shots come from ``pool`` (the
    same for every item, or per split with both splits audited: ``audit.run.shot_pools``)."""
    pre = _preprompt(cond)
    prompts = [dataset.render(cond.format, item, shots, pre, order)
               for item, shots in zip(items, item_shots(dataset, pool, cond, seed, name, items))]
    if cond.chat:
        prompts = [apply_chat_template(backend, p) for p in prompts]
    return prompts


def generation_rule(prompts: Sequence[str]) -> StopRule:
    """The stop rule of a condition's generations (``audit.prompts.stopping``): its prompts share a format,
    so the first prompt's last line decides."""
    return rule_for_prompt(prompts[0]) if prompts else rule_for_prompt("")


def generate_answers(backend: Backend, prompts: Sequence[str], max_new_tokens: int) -> list[str]:
    """Greedy generations, each stopped where its format's answer ends, within the condition's budget."""
    return list(backend.generate_until(prompts, max_new_tokens, generation_rule(prompts))) if prompts else []


def two_stage_prompts(backend: Backend, dataset: Dataset, cond: ConditionConfig, items: Sequence, pool: Sequence,
                      seed: int, name: str = "", order: int = 0) -> tuple[list[Prompt], list[str]]:
    """Self-debiasing by explanation or by re-prompting (Gallegos et al. 2024) as two real model calls: the
    model first generates under ``stage1_format`` (an explanation, or a first answer); the second prompt is
    that exchange, then the ``followup`` text, then this condition's question again (the query of ``format``,
    which ends in the answer lead). Returns the second-stage prompts and the first-stage generations."""
    first = [dataset.render(cond.stage1_format, item, shots, _preprompt(cond), order)
             for item, shots in zip(items, item_shots(dataset, pool, cond, seed, name, items))]
    outputs = generate_answers(backend, [p.text for p in first], cond.stage1_max_new_tokens)
    followup = preprompt_text(cond.followup)
    second = []
    for item, p, out in zip(items, first, outputs):
        question = dataset.render(cond.format, item, [], "", order).query
        second.append(Prompt(p.prefix, f"{p.query}{out.rstrip()}\n\n{followup}\n\n{question}"))
    return second, outputs


def check_condition(dataset: Dataset, name: str, cond: ConditionConfig, sample, pool: Sequence) -> None:
    """Fail early (one line naming the condition) on an unknown format or pre-prompt, or shots that
    cannot be drawn, before any model is loaded."""
    try:
        if cond.answer_orders > dataset.answer_orders:
            raise ConfigError(f"answer_orders = {cond.answer_orders}, but {dataset.name} offers {dataset.answer_orders}")
        if cond.answer_orders > 1 and cond.probe != "likelihood":
            raise ConfigError("answer_orders applies to the likelihood probe only (a generation is parsed in the order shown)")
        if cond.stage1_format is not None:
            if cond.chat:
                raise ConfigError("two-stage prompting (stage1_format) does not combine with chat = true")
            dataset.render(cond.stage1_format, sample, [], "")
            preprompt_text(cond.followup)
        for seed in cond.seeds:
            for shot_pool in check_pools(pool):
                shots = dataset.shots(shot_pool, cond, seed, name)
                for order in range(cond.answer_orders):
                    dataset.render(cond.format, sample, shots, _preprompt(cond), order)
    except AuditError as exc:
        message = str(exc)
        raise type(exc)(message if message.startswith("condition '") else f"condition '{name}': {message}") from None


def _check_scores(dataset: Dataset, item, scores: Sequence[float]) -> None:
    if any(math.isnan(s) or s == math.inf for s in scores):  # -inf (probability 0) is a valid score
        raise AuditError(f"model returned an invalid log-probability ({tuple(scores)}) for item {dataset.item_id(item)}; "
                         "check the model's weights and dtype")


def likelihood_requests(dataset: Dataset, prompts: Sequence[Prompt], items: Sequence) -> list[Request]:
    """One request per item and option, in item order (what a likelihood condition asks the backend)."""
    return [Request(p.prefix, p.query, dataset.continuation(it, o)) for p, it in zip(prompts, items) for o in dataset.options(it)]


def request_count(dataset: Dataset, cond: ConditionConfig, items: Sequence) -> int:
    """Requests a condition sends over all its seeds (``bias-audit plan`` and the progress total): per answer
    order one per item and option (likelihood) or one generation per item, plus the first stage's generations."""
    if cond.probe == "likelihood":
        per_seed = sum(len(dataset.options(it)) for it in items) * cond.answer_orders
    else:
        per_seed = len(items)
    if cond.stage1_format is not None:
        per_seed += len(items) * (cond.answer_orders if cond.probe == "likelihood" else 1)
    return per_seed * len(cond.seeds)


def _loglikelihoods(backend: Backend, dataset: Dataset, items: Sequence, prompts: Sequence[Prompt]) -> list[tuple[float, ...]]:
    options = [dataset.options(it) for it in items]
    flat = backend.loglikelihood(likelihood_requests(dataset, prompts, items))
    scores, start = [], 0
    for opts in options:
        scores.append(tuple(flat[start : start + len(opts)]))
        start += len(opts)
    return scores


def run_condition(backend: Backend, dataset: Dataset, name: str, cond: ConditionConfig, items: Sequence, pool: Sequence) -> ConditionRun:
    from audit.run.cost import CostMeter

    run = ConditionRun(name, cond, dataset, seeds=list(cond.seeds))
    backend = meter = CostMeter(backend)
    for seed in cond.seeds:
        prompt_sets, first_outputs = [], []
        for order in range(cond.answer_orders):
            if cond.stage1_format is not None:
                prompts, first = two_stage_prompts(backend, dataset, cond, items, pool, seed, name, order)
                first_outputs.append(first)
            else:
                prompts = build_prompts(dataset, cond, items, pool, seed, backend, name, order)
            prompt_sets.append(prompts)
        if cond.probe == "likelihood":
            per_order = [_loglikelihoods(backend, dataset, items, prompts) for prompts in prompt_sets]
            # the mean log-likelihood of each option over the answer orders (option position is a cue)
            scores = [tuple(float(np.mean(col)) for col in zip(*by_order)) for by_order in zip(*per_order)]
            for it, sc in zip(items, scores):
                _check_scores(dataset, it, sc)
            selections = [dataset.select(it, sc) for it, sc in zip(items, scores)]
            if cond.normalization != "none":
                run.raw_selections = (run.raw_selections or []) + selections
                options = [dataset.options(it) for it in items]
                normalized = _normalized(backend, dataset, items, options, scores, cond.normalization)
                selections = [dataset.select(it, sc) for it, sc in zip(items, normalized)]
            outputs: list[str | None] = list(first_outputs[0]) if first_outputs else [None] * len(items)
        else:
            generated = generate_answers(backend, [p.text for p in prompt_sets[0]], cond.max_new_tokens)
            selections = [dataset.map_answer(out, it) for out, it in zip(generated, items)]
            outputs = ([f"{a.rstrip()}\n[second stage]{b}" for a, b in zip(first_outputs[0], generated)]
                       if first_outputs else generated)
            scores = [None] * len(items)
        run.items += items
        run.selections += selections
        run.scores += scores
        run.outputs += outputs
        run.per_seed.append(dataset.per_seed(items, selections))
    run.cost = meter.cost()
    return run


def _normalized(backend: Backend, dataset: Dataset, items: Sequence, options: list[tuple[str, ...]],
                scores: list[tuple[float, ...]], mode: str) -> list[tuple[float, ...]]:
    """Scores divided by each continuation's token count (``token``) or character count (``char``, lm-eval's acc_norm)."""
    conts = [[dataset.continuation(it, o) for o in opts] for it, opts in zip(items, options)]
    flat = [c for cs in conts for c in cs]
    counts = backend.count_tokens(flat) if mode == "token" else [0] * len(flat)
    out, k = [], 0
    for cs, sc in zip(conts, scores):
        out.append(tuple(normalize_loglikelihood(s, c, counts[k + j], mode) for j, (c, s) in enumerate(zip(cs, sc))))
        k += len(cs)
    return out


def other_rate(selections: Sequence) -> float:
    """Share of items whose answer named no option (ties and refusals included)."""
    return sum(s is None for s in selections) / len(selections) if selections else math.nan


def seed_spread(per_seed: list[dict[str, float]]) -> dict[str, float] | None:
    """Standard deviation over seeds of each per-seed metric (None with a single seed)."""
    if len(per_seed) < 2 or not per_seed[0]:
        return None
    return {f"{k}_sd": float(np.nanstd([s[k] for s in per_seed], ddof=1)) for k in per_seed[0]}


def condition_summary(run: ConditionRun, config: AuditConfig) -> dict[str, Any]:
    """The condition's entry in results.json (see docs/results-schema.md): its settings, counts, and the
    dataset's metrics."""
    boot = config.boot
    cond = run.config
    summary = {
        "description": cond.description,
        "probe": cond.probe,
        "format": cond.format,
        "shots": cond.shots,
        "preprompt": "custom" if cond.preprompt_text is not None else cond.preprompt,
        "chat": cond.chat,
        "composition": cond.composition(run.dataset.condition_knobs),
        "answer_orders": cond.answer_orders,
        "two_stage": None if cond.stage1_format is None else {"stage1_format": cond.stage1_format, "followup": cond.followup},
        "strategy": cond.strategy,
        "n_items": len(run.items),
        "n_answered": sum(s is not None for s in run.selections),
        "other_rate": other_rate(run.selections),
    }
    summary.update(run.dataset.summarize(run.items, run.selections, boot))
    if cond.probe == "likelihood" and run.scores and all(s is not None for s in run.scores):
        summary.update(run.dataset.score_summary(run.items, run.scores, boot))
    if run.raw_selections is not None:
        raw = run.dataset.summarize(run.items, run.raw_selections, boot)
        summary["normalization"] = cond.normalization
        summary["unnormalized"] = {k: raw[k] for k in run.dataset.normalization_keys if k in raw}
        summary["unnormalized"]["changed_selections"] = sum(a != b for a, b in zip(run.selections, run.raw_selections)) / len(run.items)
    summary["seeds"] = run.seeds
    summary["seed_spread"] = seed_spread(run.per_seed)
    summary["cost"] = run.cost
    return summary
