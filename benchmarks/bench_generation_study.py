"""``bench_study.py --generation-only --items N``: the study preset's generation calls on N official items, our
engine one call each against HF ``generate`` one prompt at a time on a seeded sample (see bench_study.py)."""

from __future__ import annotations

import hashlib
import sys
import tempfile
import time
from pathlib import Path

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


def _load(name: str, where: Path):
    """(label, LoadedModel) of a benchmark model, or (label, None) when SmolLM2's conversion is not cached."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from audit.backends.hf.loading import LoadedModel
    from bench_study import gpt2_model_dir

    if name == "smollm2":
        from smollm2 import load_smollm2

        return "SmolLM2-135M-Instruct", load_smollm2()
    model_dir = gpt2_model_dir(where / "gpt2", None)
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype="float32").eval()
    return "GPT-2-small-shaped, 12 layers (random weights)", LoadedModel(name, model, tok, torch.device("cpu"))


def study_generation(args) -> list[str]:
    """``--generation-only --items N``: the study's generation calls on N official items, each one call of our
    engine (its default batching) against HF ``generate`` one prompt at a time on a seeded sample of each call's
    prompts (``--hf-generations`` per call, extrapolated), with the texts of the sampled prompts compared; for
    each model of ``--models``. The digest of all our new tokens lets two runs (before/after a change) be
    compared token for token."""
    out: list[str] = []
    calls = study_generation_calls(args.items, args.data)
    for name in args.models.split(","):
        with tempfile.TemporaryDirectory(prefix="bench-gen-") as tmp:
            label, lm = _load(name, Path(tmp))
            if lm is None:
                out += [f"{label}: conversion not cached; skipped", ""]
                continue
            out += _model_generation(label, lm, calls, args)
    return out


def _model_generation(label: str, lm, calls, args) -> list[str]:
    from audit.backends.hf.scorer import Scorer

    scorer = Scorer(lm, progress=False)
    scorer.generate(["Warm-up"], 2)
    digest = hashlib.sha256()
    lines, ours_total, hf_total, same, sampled = [], 0.0, 0.0, 0, 0
    for name, prompts, budget, rule in calls:
        cpu = time.process_time()
        tokens = scorer.generate_tokens(prompts, budget, stop=rule)
        ours = time.process_time() - cpu
        digest.update(repr(tokens).encode())
        texts = [scorer._text(t, rule) for t in tokens]
        timed = TimedBackend.__new__(TimedBackend)
        timed.generations = [(p, budget, rule) for p in prompts]
        hf_each, n, hf_texts = hf_one_at_a_time_cost(lm, timed, args.hf_generations, stop=args.hf_stop, texts=True)
        equal = sum(hf_texts[p] == texts[prompts.index(p)] for p in hf_texts)
        hf = hf_each * len(prompts)
        lines.append(f"| {name} | {len(prompts)} | {budget} | {sum(map(len, tokens))} | {ours:.1f} | {hf:.1f} (sample {n}) | "
                     f"{hf / ours:.1f}x | {equal}/{n} |")
        ours_total, hf_total, same, sampled = ours_total + ours, hf_total + hf, same + equal, sampled + n
        print(lines[-1], file=sys.stderr, flush=True)
    return [f"generation only, {label}, the study preset's generation calls on {args.items} official items "
            f"({args.data}), ours one call each (batch size {scorer.batch_size}, {scorer.generation_tokens} key/value "
            f"columns) against HF generate one prompt at a time (HF stops by {args.hf_stop}; extrapolated from the "
            "sample), CPU-s:", "",
            "| call | prompts | budget | new tokens | ours CPU-s | HF one at a time CPU-s | HF / ours | sampled texts equal |",
            "|---|---:|---:|---:|---:|---:|---:|---:|", *lines,
            f"| all | | | | {ours_total:.1f} | {hf_total:.1f} | {hf_total / ours_total:.1f}x | {same}/{sampled} |",
            f"digest of our new tokens: {digest.hexdigest()[:16]}", ""]
