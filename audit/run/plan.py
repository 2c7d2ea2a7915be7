"""``bias-audit plan``: what a run will do, before any weights load.

For each model and condition: the requests it sends (exactly those ``run_condition`` sends), the
prompt tokens they hold (context + continuation as the HF backend tokenises them; needs the model's
tokenizer, loaded alone: a local model directory, a built reference model, a hub id already in the
local hub cache; otherwise "unknown"), how many the result cache already answers, and an estimate of
the time the rest takes.

Cache and time come from what earlier runs recorded (``audit.run.throughput``): the result cache's key
for a model needs the loaded model (its config, tokenizer files, weight hash, device), so the plan
uses the key of the last run that audited a model under the same name, and that run's measured
seconds per scored request under the same condition (or, as a rough guide, under the model's other
conditions). A model never run before has no estimate: run it once with ``max_items`` small to measure.
A model changed on disk since its last run is only noticed when a run loads it (its key changes).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from audit.backends import parse_spec
from audit.backends.cached import default_cache_path, request_key
from audit.errors import AuditError, ConditionUnavailable
from audit.run.conditions import build_prompts, likelihood_requests, request_count
from audit.run.progress import format_duration
from audit.run.session import AuditSession
from audit.run.throughput import Throughput, measured


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


def _work(session: AuditSession, condition: str, tokenizer) -> tuple[str, list] | None:
    """(kind, [(shared prefix, context or prompt, continuation or max_new_tokens)]) of a condition over its
    seeds; None when the prompts cannot be rendered without the model (a chat condition without a tokenizer)."""
    cond = session.config.conditions[condition]
    out: list[tuple[str, str, Any]] = []
    orders = cond.answer_orders if cond.probe == "likelihood" else 1  # a likelihood condition scores every answer order
    for seed in cond.seeds:
        for order in range(orders):
            try:
                prompts = build_prompts(session.dataset, cond, session.items, session.pool, seed, tokenizer, condition, order)
            except ConditionUnavailable:
                return None
            if cond.probe == "likelihood":
                out += [(r.prefix, r.context, r.continuation) for r in likelihood_requests(session.dataset, prompts, session.items)]
            else:
                out += [(p.prefix, p.text, int(cond.max_new_tokens)) for p in prompts]
    return ("loglikelihood" if cond.probe == "likelihood" else "generate"), out


def _tokens(tokenizer, kind: str, work: list) -> int:
    """Prompt tokens (context and continuation) of every request: the shared prefix's tokens, counted for
    each request, plus those of the request's own text. Within a token or two per request of the engine's
    whole-context tokenisation (a merge across the prefix boundary), and fast: the long prefix is encoded
    once per condition, not once per request."""
    from audit.backends.hf.tokenization import _encode_many

    prefixes = list(dict.fromkeys(prefix for prefix, _, _ in work))
    prefix_len = dict(zip(prefixes, (len(ids) for ids in _encode_many(tokenizer, prefixes))))
    rests = []
    for prefix, text, target in work:
        whole = text + target if kind == "loglikelihood" else text
        rests.append(whole[len(prefix):] if prefix and whole.startswith(prefix) else whole)
    unique = list(dict.fromkeys(rests))
    rest_len = dict(zip(unique, (len(ids) for ids in tokenizer(unique, add_special_tokens=False)["input_ids"])))
    total = 0
    for (prefix, text, _), rest in zip(work, rests):
        own = prefix if prefix and text.startswith(prefix) else ""
        total += (prefix_len[own] if own else 0) + rest_len[rest]
    return total


def _estimate(history: list[Throughput], condition: str, misses: int) -> tuple[float | None, str]:
    if misses == 0:
        return 0.0, "all cached"
    same = [t for t in history if t.condition == condition]
    if same:
        t = same[0]
        when = dt.datetime.fromtimestamp(t.updated).strftime("%Y-%m-%d")
        return misses * t.seconds_per_request, f"measured: {t.requests} requests in {t.seconds:.1f} s on {t.device}, {when}"
    if history:
        rate = sum(t.seconds for t in history) / sum(t.requests for t in history)
        return misses * rate, "rough: from this model's other conditions (prompt lengths differ)"
    return None, "no earlier run of this model: run once with max_items small to measure"


def plan_session(session: AuditSession, cache_path: Path | None = None) -> list[ConditionPlan]:
    """Plan every model and condition of a prepared session; loads no weights."""
    use_cache = session.result_cache() is not None
    cache = session.result_cache()
    path = Path(cache_path or getattr(cache, "path", None) or default_cache_path())
    plans = []
    for spec in session.model_specs:
        tokenizer, tokenizer_source = load_tokenizer(spec, session.backend_options)
        history = measured(path, spec) if use_cache else []
        model_key = history[0].model_key if history else None
        history = [t for t in history if t.model_key == model_key]
        for condition, cond in session.config.conditions.items():
            n = request_count(session.dataset, cond, session.items)
            work = _work(session, condition, tokenizer)
            tokens = cached = None
            if work is not None:
                kind, items = work
                if len(items) != n:
                    raise AuditError(f"internal: plan counted {len(items)} requests for '{condition}', expected {n}")
                tokens = _tokens(tokenizer, kind, items) if tokenizer is not None else None
                if model_key is not None and cache is not None:
                    keys = [request_key(model_key, kind, text, target) for _, text, target in items]
                    found = cache.get_many(keys)
                    cached = sum(k in found for k in keys)
            if cached is None and cache is not None and model_key is None and len(cache) == 0:
                cached = 0  # an empty cache holds nothing for any model
            if not use_cache:
                estimate, basis = None, "result cache off: no measured rate"
            else:
                estimate, basis = _estimate(history, condition, n - (cached or 0))
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
             f"{len(session.items)} items of '{session.dataset.name}'; nothing is loaded or scored"]
    for r in [header, tuple("-" * w for w in widths), *rows]:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    for model in dict.fromkeys(p.model for p in plans):
        lines.append(f"tokenizer of {model}: {next(p.tokenizer for p in plans if p.model == model)}")
    total = sum(p.requests for p in plans)
    known = [p.estimate_s for p in plans]
    eta = format_duration(sum(known)) if all(e is not None for e in known) else "unknown"
    lines.append(f"total: {total:,} requests, estimated {eta}")
    return "\n".join(lines)
