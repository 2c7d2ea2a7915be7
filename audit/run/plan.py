"""``bias-audit plan``: what a run will do, and how long it will take on this machine.

For each model and condition: the requests it sends (exactly those ``run_condition`` sends, over seeds,
answer orders and both stages of a two-stage condition), the prompt tokens they hold (context +
continuation as the HF backend tokenises them), how many the result cache already answers, and an
estimate of the time the rest takes.

The estimate is keyed by request kind, not by condition: the plan loads each model once and times a few
of the preset's own requests per kind (likelihood scoring: seconds per computed token, the shared prefix
counted once; generation: seconds per generated token on top of its prompt), then applies those rates to
every condition's uncached requests. A two-stage condition's second stage holds the model's first-stage
output, unknown before the run: its tokens are a lower bound and the cache is not asked about it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from audit.backends import parse_spec
from audit.backends.cached import default_cache_path, generation_target, request_key
from audit.errors import AuditError, ConditionUnavailable
from audit.run.conditions import build_prompts, generation_rule, likelihood_requests, request_count
from audit.run.progress import format_duration
from audit.run.session import AuditSession
from audit.run.throughput import measured


@dataclass
class ConditionPlan:
    model: str
    condition: str
    probe: str
    requests: int
    prompt_tokens: int | None  # None: no tokenizer without loading the model
    cached: int | None  # None: no earlier run of this model recorded in the cache
    estimate_s: float | None  # seconds for the requests the cache does not hold
    basis: str  # how the estimate was made, or why there is none
    tokenizer: str = ""  # where the tokenizer came from, or why there is none


def load_tokenizer(spec: str, options) -> tuple[Any | None, str]:
    """The model's tokenizer without its weights, and where it came from (or why there is none)."""
    scheme, target = parse_spec(spec)
    source: str | None = None
    local_only = True
    if scheme == "reference":
        from audit.backends.reference.builder import INFO_FILE, _model_dir, build_hash

        path = _model_dir(target, build_hash())
        if not (path / INFO_FILE).is_file():
            return None, "reference model not built yet (the first run builds it)"
        source = str(path)
    elif scheme == "hf":
        from audit.backends.hf.loading import resolve_model_path

        _, path = resolve_model_path(target, allow_pickle=options.allow_pickle)
        source = str(path) if path is not None else target
    elif options.extra.get("tokenizer"):
        source = options.extra["tokenizer"]
    if source is None:
        return None, f"no tokenizer for a {scheme} model"
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only, trust_remote_code=options.trust_remote_code)
    except Exception as exc:  # not in the local hub cache, or not a tokenizer
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return None, f"tokenizer not available locally ({first[:80]})"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer, source


def _work(session: AuditSession, condition: str, tokenizer) -> list[tuple[str, str, str, Any, bool]] | None:
    """Every request a condition sends over its seeds and answer orders, in ``run_condition``'s order, as
    (kind, shared prefix, context or prompt, continuation or max_new_tokens, exact). A two-stage condition's
    second-stage prompts hold the model's first-stage output, unknown before the run: they are rendered
    with an empty output (``exact`` False: their tokens are a lower bound and the cache cannot be asked).
    None when the prompts cannot be rendered without the model (a chat condition without a tokenizer)."""
    from audit.prompts.preprompts import preprompt_text
    from audit.prompts.render import Prompt
    from audit.run.conditions import _preprompt

    ds, cond, items, pool = session.dataset, session.config.conditions[condition], session.items, session.pool
    out: list[tuple[str, str, str, Any, bool]] = []
    for seed in cond.seeds:
        orders = range(cond.answer_orders) if cond.probe == "likelihood" else range(1)
        for order in orders:
            exact = True
            try:
                if cond.stage1_format is not None:
                    shots = ds.shots(pool, cond, seed, condition)
                    first = [ds.render(cond.stage1_format, it, shots, _preprompt(cond), order) for it in items]
                    target = generation_target(cond.stage1_max_new_tokens, generation_rule([p.text for p in first]))
                    out += [("generate", p.prefix, p.text, target, True) for p in first]
                    followup = preprompt_text(cond.followup)
                    prompts = [Prompt(p.prefix, f"{p.query}\n\n{followup}\n\n{ds.render(cond.format, it, [], '', order).query}")
                               for it, p in zip(items, first)]
                    exact = False
                else:
                    prompts = build_prompts(ds, cond, items, pool, seed, tokenizer, condition, order)
            except ConditionUnavailable:
                return None
            if cond.probe == "likelihood":
                out += [("loglikelihood", r.prefix, r.context, r.continuation, exact)
                        for r in likelihood_requests(ds, prompts, items)]
            else:
                target = generation_target(cond.max_new_tokens, generation_rule([p.text for p in prompts]))
                out += [("generate", p.prefix, p.text, target, exact) for p in prompts]
    return out


def _tokens(tokenizer, work: list) -> tuple[list[int], list[int]]:
    """Per request: its prompt tokens (shared prefix + own text; context and continuation for a likelihood
    request), and the tokens it computes when the shared prefix's key/value cache is reused (its own text,
    plus the prefix once for its first request). Within a token or two per request of the engine's
    whole-context tokenisation (a merge across the prefix boundary), and fast: each prefix is encoded once."""
    from audit.backends.hf.tokenization import _encode_many

    prefixes = list(dict.fromkeys(prefix for _, prefix, _, _, _ in work))
    prefix_len = dict(zip(prefixes, (len(ids) for ids in _encode_many(tokenizer, prefixes))))
    rests, owns = [], []
    for kind, prefix, text, target, _ in work:
        whole = text + target if kind == "loglikelihood" else text
        own = prefix if prefix and whole.startswith(prefix) else ""
        owns.append(own)
        rests.append(whole[len(own):])
    unique = list(dict.fromkeys(rests))
    rest_len = dict(zip(unique, (len(ids) for ids in tokenizer(unique, add_special_tokens=False)["input_ids"])))
    prompt, computed, seen = [], [], set()
    for own, rest in zip(owns, rests):
        shared = prefix_len[own] if own else 0
        prompt.append(shared + rest_len[rest])
        computed.append(rest_len[rest] + (shared if own not in seen else 0))
        seen.add(own)
    return prompt, computed


def _new_tokens(target) -> int:
    """A generation's token budget from its cache-key target (``audit.backends.cached.generation_target``)."""
    return int(target[0]) if isinstance(target, list) else int(target)


def _samples(works: dict[str, list]) -> tuple[list, list]:
    """A few real requests of each kind to time: up to 24 likelihood requests sharing one prefix, from the
    largest likelihood condition, evenly spread over it; up to 4 generations of one budget likewise."""
    def pick(kind: str, n: int) -> list:
        pools = [[w for w in work if w[0] == kind and w[4]] for work in works.values() if work]
        pool = max(pools, key=len, default=[])
        if not pool:
            return []
        same = [w for w in pool if w[1] == pool[0][1] and (kind == "loglikelihood" or w[3] == pool[0][3])]
        step = max(len(same) // n, 1)
        return same[::step][:n]
    return pick("loglikelihood", 24), pick("generate", 4)


def _measure(spec: str, session: AuditSession, works: dict[str, list]):
    """(model key, tokenizer, KindRates or None, why not) from loading the model and timing a few requests."""
    from audit.backends import load_backend
    from audit.backends.base import Request
    from audit.backends.cached import SCORING_VERSION, _sha256_json
    from audit.run.throughput import measure_rates

    try:
        backend = load_backend(session.aliases.get(spec, spec), session.backend_options)
    except AuditError as exc:
        return None, None, None, f"model not loadable for measuring ({exc})"
    tokenizer = getattr(backend, "tokenizer", None)
    model_key = _sha256_json([backend.cache_key(), SCORING_VERSION])[:32]
    lik, gen = _samples(works)
    if tokenizer is None or not lik:
        return model_key, tokenizer, None, "no likelihood request or tokenizer to measure with"
    _, lik_tokens = _tokens(tokenizer, lik)
    _, gen_tokens = _tokens(tokenizer, gen) if gen else ([], [])
    rates = measure_rates(backend, [Request(p, c, t) for _, p, c, t, _ in lik], sum(lik_tokens),
                          [(text, _new_tokens(target)) for _, _, text, target, _ in gen], sum(gen_tokens))
    return model_key, tokenizer, rates, rates.basis


def plan_session(session: AuditSession, cache_path: Path | None = None, measure: bool = True) -> list[ConditionPlan]:
    """Plan every model and condition of a prepared session. With ``measure``, loads each model once and
    times a few of the preset's own requests per kind (likelihood, generation) to estimate the time."""
    cache = session.result_cache()
    plans = []
    for spec in session.model_specs:
        tokenizer, tokenizer_source = load_tokenizer(session.aliases.get(spec, spec), session.backend_options)
        works = {name: _work(session, name, tokenizer) for name in session.config.conditions}
        model_key = rates = None
        why = "not measured"
        if measure:
            model_key, loaded_tokenizer, rates, why = _measure(spec, session, works)
            if tokenizer is None and loaded_tokenizer is not None:
                tokenizer, tokenizer_source = loaded_tokenizer, "the loaded model's"
                works = {name: _work(session, name, tokenizer) for name in session.config.conditions}
        elif cache is not None:
            history = measured(Path(cache_path or getattr(cache, "path", None) or default_cache_path()), spec)
            model_key = history[0].model_key if history else None
        for condition, cond in session.config.conditions.items():
            n = request_count(session.dataset, cond, session.items)
            work = works[condition]
            tokens = cached = estimate = None
            basis = why
            if work is not None:
                if len(work) != n:
                    raise RuntimeError(f"plan counted {len(work)} requests for '{condition}', expected {n}")
                hit = [False] * n
                if model_key is not None and cache is not None:
                    keys = [request_key(model_key, kind, text, target) if exact else None
                            for kind, _, text, target, exact in work]
                    found = cache.get_many([k for k in keys if k is not None])
                    hit = [k is not None and k in found for k in keys]
                    cached = sum(hit)
                if tokenizer is not None:
                    prompt, _ = _tokens(tokenizer, work)
                    tokens = sum(prompt)
                    misses = [w for w, h in zip(work, hit) if not h]
                    if not misses:
                        estimate, basis = 0.0, "all cached"
                    elif rates is not None:
                        _, computed = _tokens(tokenizer, misses) if misses else ([], [])
                        estimate = sum(rates.estimate(w[0], c, _new_tokens(w[3]) if w[0] == "generate" else 0)
                                       for w, c in zip(misses, computed))
                        basis = rates.basis
            if cached is None and cache is not None and model_key is None and len(cache) == 0:
                cached = 0  # an empty cache holds nothing for any model
            plans.append(ConditionPlan(spec, condition, cond.probe, n, tokens, cached, estimate, basis, tokenizer_source))
    return plans


def plan_json(session: AuditSession, plans: list[ConditionPlan]) -> dict:
    return {"dataset": session.dataset.name, "n_items": len(session.items),
            "conditions": [asdict(p) for p in plans],
            "total": {"requests": sum(p.requests for p in plans),
                      "estimate_s": None if any(p.estimate_s is None for p in plans) else sum(p.estimate_s for p in plans)}}


def format_plan(session: AuditSession, plans: list[ConditionPlan]) -> str:
    def num(v):
        return "unknown" if v is None else f"{v:,}"

    header = ("model", "condition", "probe", "requests", "prompt tokens", "cached", "estimate", "basis")
    rows = [(p.model, p.condition, p.probe, f"{p.requests:,}", num(p.prompt_tokens), num(p.cached),
             format_duration(p.estimate_s) if p.estimate_s is not None else "unknown", p.basis) for p in plans]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"bias-audit plan: {len(session.model_specs)} model(s), {len(session.config.conditions)} condition(s), "
             f"{len(session.items)} items of '{session.dataset.name}'"]
    for r in [header, tuple("-" * w for w in widths), *rows]:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    for model in dict.fromkeys(p.model for p in plans):
        lines.append(f"tokenizer of {model}: {next(p.tokenizer for p in plans if p.model == model)}")
    total = sum(p.requests for p in plans)
    known = [p.estimate_s for p in plans]
    eta = format_duration(sum(known)) if all(e is not None for e in known) else "unknown"
    lines.append(f"total: {total:,} requests, estimated {eta}")
    return "\n".join(lines)
