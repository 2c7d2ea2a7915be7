"""``bench_study.py --generation-only --items N``: the study preset's generation calls on N official items, our
engine one call each against HF ``generate`` one prompt at a time on a seeded sample (see bench_study.py)."""

from __future__ import annotations

import sys
import time

from bench_study import TimedBackend, hf_one_at_a_time_cost
from audit.prompts.stopping import StopRule


def study_generation_calls(items: int, data: str) -> list[tuple[str, list[str], int, StopRule]]:
    """The study preset's generation calls on ``items`` official items, as its conditions make them (seed 0):
    (condition, prompts, budget, stop rule); two-stage conditions contribute their first stage."""
    from audit.config import load_config
    from audit.datasets import resolve_data
    from audit.run.conditions import build_prompts, generation_rule

    cfg = load_config(preset="study")
    dataset, source = resolve_data(data)
    dataset.configure(cfg)
    chosen = dataset.subsample(dataset.load(source, split="test", seed=cfg.seed), items, seed=cfg.seed)
    pool = dataset.load(source, split="dev", seed=cfg.seed)
    calls = []
    for name, cond in cfg.conditions.items():
        if cond.stage1_format is not None:
            cond, budget = cond.model_copy(update={"format": cond.stage1_format}), cond.stage1_max_new_tokens
        elif cond.probe == "generation":
            budget = cond.max_new_tokens
        else:
            continue
        prompts = [p.text for p in build_prompts(dataset, cond, chosen, pool, cond.seeds[0], None, name)]
        rule = generation_rule(prompts)
        calls.append((name, prompts, rule.tokens(budget), rule))
    return calls


def study_generation(args) -> list[str]:
    """``--generation-only --items N``: the study's generation calls on N official items, each one call of our
    engine (its default batching) against HF ``generate`` one prompt at a time on a seeded sample of each call's
    prompts (``--hf-generations`` per call, extrapolated), with the texts of the sampled prompts compared."""
    from smollm2 import load_smollm2

    from audit.backends.hf.scorer import Scorer

    lm = load_smollm2()
    if lm is None:
        return ["SmolLM2-135M: conversion not cached; skipped"]
    scorer = Scorer(lm, progress=False)
    scorer.generate(["Warm-up"], 2)
    lines, ours_total, hf_total, same, sampled = [], 0.0, 0.0, 0, 0
    for name, prompts, budget, rule in study_generation_calls(args.items, args.data):
        cpu = time.process_time()
        texts = scorer.generate(prompts, budget, stop=rule)
        ours = time.process_time() - cpu
        timed = TimedBackend.__new__(TimedBackend)
        timed.generations = [(p, budget, rule) for p in prompts]
        hf_each, n, hf_texts = hf_one_at_a_time_cost(lm, timed, args.hf_generations, stop=args.hf_stop, texts=True)
        equal = sum(hf_texts[p] == texts[prompts.index(p)] for p in hf_texts)
        hf = hf_each * len(prompts)
        lines.append(f"| {name} | {len(prompts)} | {budget} | {ours:.1f} | {hf:.1f} (sample {n}) | {hf / ours:.1f}x | {equal}/{n} |")
        ours_total, hf_total, same, sampled = ours_total + ours, hf_total + hf, same + equal, sampled + n
        print(lines[-1], file=sys.stderr, flush=True)
    return [f"generation only, SmolLM2-135M-Instruct, the study preset's generation calls on {args.items} official items "
            f"({args.data}), ours one call each (batch size {scorer.batch_size}) against HF generate one prompt at a time "
            f"(HF stops by {args.hf_stop}; extrapolated from the sample), CPU-s:", "",
            "| call | prompts | budget | ours CPU-s | HF one at a time CPU-s | HF / ours | sampled texts equal |",
            "|---|---:|---:|---:|---:|---:|---:|", *lines,
            f"| all | | | {ours_total:.1f} | {hf_total:.1f} | {hf_total / ours_total:.1f}x | {same}/{sampled} |"]
