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
from audit.errors import AuditError
from audit.prompts.preprompts import preprompt_text
from audit.prompts.render import Prompt, apply_chat_template


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
                  backend: Backend | None, name: str = "") -> list[Prompt]:
    """The prompt of each item under a condition and seed; the shots (same for every item) come from ``pool``."""
    shots = dataset.shots(pool, cond, seed, name)
    pre = _preprompt(cond)
    prompts = [dataset.render(cond.format, item, shots, pre) for item in items]
    if cond.chat:
        prompts = [apply_chat_template(backend, p) for p in prompts]
    return prompts


def check_condition(dataset: Dataset, name: str, cond: ConditionConfig, sample, pool: Sequence) -> None:
    """Fail early (one line naming the condition) on an unknown format or pre-prompt, or shots that
    cannot be drawn, before any model is loaded."""
    try:
        for seed in cond.seeds:
            shots = dataset.shots(pool, cond, seed, name)
            dataset.render(cond.format, sample, shots, _preprompt(cond))
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
    """Requests a condition sends over all its seeds (``bias-audit plan`` and the progress total)."""
    per_seed = sum(len(dataset.options(it)) for it in items) if cond.probe == "likelihood" else len(items)
    return per_seed * len(cond.seeds)


def run_condition(backend: Backend, dataset: Dataset, name: str, cond: ConditionConfig, items: Sequence, pool: Sequence) -> ConditionRun:
    run = ConditionRun(name, cond, dataset, seeds=list(cond.seeds))
    for seed in cond.seeds:
        prompts = build_prompts(dataset, cond, items, pool, seed, backend, name)
        if cond.probe == "likelihood":
            options = [dataset.options(it) for it in items]
            requests = likelihood_requests(dataset, prompts, items)
            flat = backend.loglikelihood(requests)
            scores, start = [], 0
            for opts in options:
                scores.append(tuple(flat[start : start + len(opts)]))
                start += len(opts)
            for it, sc in zip(items, scores):
                _check_scores(dataset, it, sc)
            selections = [dataset.select(it, sc) for it, sc in zip(items, scores)]
            outputs: list[str | None] = [None] * len(items)
        else:
            outputs = list(backend.generate([p.text for p in prompts], max_new_tokens=cond.max_new_tokens))
            selections = [dataset.map_answer(out, it) for out, it in zip(outputs, items)]
            scores = [None] * len(items)
        run.items += items
        run.selections += selections
        run.scores += scores
        run.outputs += outputs
        run.per_seed.append(dataset.per_seed(items, selections))
    return run


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
    boot = {"confidence": config.confidence, "n_resamples": config.n_resamples, "seed": config.seed}
    cond = run.config
    summary = {
        "description": cond.description,
        "probe": cond.probe,
        "format": cond.format,
        "shots": cond.shots,
        "preprompt": "custom" if cond.preprompt_text is not None else cond.preprompt,
        "chat": cond.chat,
        "composition": cond.composition(),
        "n_items": len(run.items),
        "n_answered": sum(s is not None for s in run.selections),
        "other_rate": other_rate(run.selections),
    }
    summary.update(run.dataset.summarize(run.items, run.selections, boot))
    summary["seeds"] = run.seeds
    summary["seed_spread"] = seed_spread(run.per_seed)
    return summary
