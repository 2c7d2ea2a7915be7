"""Running conditions on a model: render prompts, score or generate, select a candidate per item,
and compute the condition's metrics. Each condition is measured once per model and then shared."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from audit.stats import metrics as m
from audit.datasets.winobias.answers import map_answer
from audit.config import AuditConfig, ConditionConfig
from audit.errors import AuditError
from audit.datasets.winobias.items import Item
from audit.backends.hf.loading import LoadedModel
from audit.prompts.preprompts import preprompt_text
from audit.prompts.render import Prompt, apply_chat_template, continuation, render_prompt
from audit.backends.hf.scorer import Request, Scorer
from audit.datasets.winobias.shots import compose_shots


@dataclass
class ConditionRun:
    """Every item's outcome under one condition, pooled over the condition's seeds."""

    name: str
    config: ConditionConfig
    items: list[Item]
    selections: list[str | None]
    scores: list[tuple[float, float] | None]
    outputs: list[str | None]
    seeds: list[int]
    per_seed: list[tuple[float, float]] = field(default_factory=list)  # (A-SB, RPA gap) for each seed

    @property
    def o_sb(self) -> dict[str, float | None]:
        return m.occupational_selection_bias(self.items, self.selections)

    def choices(self) -> list[dict]:
        return [
            {"item": it.id, "selected": sel, "correct": sel == it.referent, "scores": list(sc) if sc else None, "output": out}
            for it, sel, sc, out in zip(self.items, self.selections, self.scores, self.outputs)
        ]


def _preprompt(cond: ConditionConfig) -> str:
    return cond.preprompt_text if cond.preprompt_text is not None else preprompt_text(cond.preprompt)


def build_prompts(cond: ConditionConfig, items: Sequence[Item], pool: Sequence[Item], seed: int, tokenizer, name: str = "") -> list[Prompt]:
    """The prompt of each item under a condition and seed; the shots (same for every item) come from ``pool``."""
    shots = compose_shots(
        pool, cond.shots, seed=seed, pro_share=cond.pro_share, occupations=cond.occupations,
        male_share=cond.male_share, condition=name,
    )
    pre = _preprompt(cond)
    prompts = [render_prompt(cond.format, item, shots, pre) for item in items]
    if cond.chat:
        prompts = [apply_chat_template(tokenizer, p) for p in prompts]
    return prompts


def check_condition(name: str, cond: ConditionConfig, sample: Item, pool: Sequence[Item]) -> None:
    """Fail early (one line naming the condition) on an unknown format or pre-prompt, or shots that
    cannot be drawn, before any model is loaded."""
    try:
        for seed in cond.seeds:
            shots = compose_shots(pool, cond.shots, seed=seed, pro_share=cond.pro_share, occupations=cond.occupations,
                                  male_share=cond.male_share, condition=name)
            render_prompt(cond.format, sample, shots, _preprompt(cond))
    except AuditError as exc:
        message = str(exc)
        raise type(exc)(message if message.startswith("condition '") else f"condition '{name}': {message}") from None


def _select(item: Item, scores: tuple[float, float]) -> str | None:
    if any(math.isnan(s) or s == math.inf for s in scores):  # -inf (probability 0) is a valid score
        raise AuditError(f"model returned an invalid log-probability ({scores}) for item {item.id}; check the model's weights and dtype")
    a, b = scores
    if a == b:
        return None  # a tie names neither candidate
    return item.candidates[0] if a > b else item.candidates[1]


def run_condition(scorer: Scorer, name: str, cond: ConditionConfig, items: Sequence[Item], pool: Sequence[Item]) -> ConditionRun:
    run = ConditionRun(name, cond, [], [], [], [], list(cond.seeds))
    for seed in cond.seeds:
        prompts = build_prompts(cond, items, pool, seed, scorer.lm.tokenizer, name)
        if cond.probe == "likelihood":
            requests = [Request(p.prefix, p.query, continuation(c)) for p, it in zip(prompts, items) for c in it.candidates]
            flat = scorer.loglikelihood(requests)
            scores = [(flat[2 * i], flat[2 * i + 1]) for i in range(len(items))]
            selections = [_select(it, sc) for it, sc in zip(items, scores)]
            outputs: list[str | None] = [None] * len(items)
        else:
            outputs = list(scorer.generate([p.text for p in prompts], max_new_tokens=cond.max_new_tokens))
            selections = [map_answer(out, it.candidates) for out, it in zip(outputs, items)]
            scores = [None] * len(items)
        run.items += items
        run.selections += selections
        run.scores += scores
        run.outputs += outputs
        run.per_seed.append((m.a_sb_of(items, selections), m.rpa_gap_of(items, selections)))
    return run



def condition_summary(run: ConditionRun, config: AuditConfig) -> dict:
    """The condition's entry in results.json (see docs/results-schema.md)."""
    boot = {"confidence": config.confidence, "n_resamples": config.n_resamples, "seed": config.seed}
    o_sb = run.o_sb
    rpa = m.referent_prediction_accuracy(run.items, run.selections)
    rpa["gap_ci"] = list(m.bootstrap_interval(run.items, run.selections, m.rpa_gap_of, **boot))
    spread = None
    if len(run.per_seed) > 1:
        arr = np.array(run.per_seed, float)
        spread = {"a_sb_sd": float(np.nanstd(arr[:, 0], ddof=1)), "rpa_gap_sd": float(np.nanstd(arr[:, 1], ddof=1))}
    cond = run.config
    return {
        "description": cond.description,
        "probe": cond.probe,
        "format": cond.format,
        "shots": cond.shots,
        "preprompt": "custom" if cond.preprompt_text is not None else cond.preprompt,
        "chat": cond.chat,
        "composition": cond.composition(),
        "n_items": len(run.items),
        "n_answered": sum(s is not None for s in run.selections),
        "other_rate": m.other_rate(run.selections),
        "a_sb": m.aggregate_selection_bias(o_sb),
        "a_sb_ci": list(m.bootstrap_interval(run.items, run.selections, m.a_sb_of, **boot)),
        "o_sb": o_sb,
        "rpa": rpa,
        "seeds": run.seeds,
        "seed_spread": spread,
    }
