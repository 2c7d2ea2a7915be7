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

The request count is exact (``request_count``, no prompt rendered). Prompt tokens, cache hits and requests
repeated across conditions need each prompt rendered and tokenised, which on the full BBQ files (millions of
requests) cost the plan minutes: above ``COUNT_SAMPLE`` items they are counted on an even spread of that many
items (the same for every condition) and scaled to all, the token count with its sampling error (two
standard errors, about 95%) in ``prompt_tokens_error``; ``counted_items`` says how many items were counted.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from audit.backends import parse_spec
from audit.backends.cached import default_cache_path, generation_target, request_key
from audit.errors import AuditError, ConditionUnavailable
from audit.run.collector import freeze_long_lived
from audit.run.conditions import build_prompts, generation_rule, likelihood_requests, request_count
from audit.run.progress import format_duration
from audit.run.session import AuditSession
from audit.run.plan_timing import (ConditionCost, Seconds, spread, measure_after_scoring, measure_condition, shape_key,
                                   warm_up)
from audit.run.throughput import measured


@dataclass
class ConditionPlan:
    model: str
    condition: str
    probe: str
    requests: int
    prompt_tokens: int | None  # None: no tokenizer without loading the model
    cached: int | None  # None: no earlier run of this model recorded in the cache
    estimate_s: float | None  # wall seconds for the requests the cache does not hold, on this machine with its cores free
    basis: str  # how the estimate was made, or why there is none
    tokenizer: str = ""  # where the tokenizer came from, or why there is none
    load_s: float = 0.0  # seconds to load the model (on its first condition), part of the run's time (cores free)
    after_s: float = 0.0  # seconds of gates, resampling and report for this model (on its first condition; cores free)
    cpu_s: float | None = None  # CPU seconds of estimate_s + load_s + after_s (steadier than wall time on a shared machine)
    at_load_s: float | None = None  # wall seconds of estimate_s + load_s + after_s if the machine stays as loaded as while planning
    counted_items: int = 0  # items whose requests were rendered and tokenised: all (exact counts) or a spread sample
    prompt_tokens_error: int | None = None  # +- two standard errors of prompt_tokens when counted on a sample (0: exact)


COUNT_SAMPLE = 256  # above this many items, tokens, cache hits and repeats are counted on a spread sample of this many


def load_tokenizer(spec: str, options) -> tuple[Any | None, str]:
    """The model's tokenizer without its weights, and where it came from (or why there is none)."""
    scheme, target = parse_spec(spec)
    source: str | None = None
    local_only = True
    if scheme == "reference":
        from audit.datasets.winobias.reference_model.builder import INFO_FILE, _model_dir, build_hash

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


def _work(session: AuditSession, condition: str, tokenizer, items: list) -> list[tuple[str, str, str, Any, bool, int]] | None:
    """Every request a condition sends for ``items`` over its seeds and answer orders, in ``run_condition``'s
    order, as (kind, shared prefix, own text, continuation or max_new_tokens, exact, item index): the context
    or prompt is prefix + own text. A two-stage condition's second-stage prompts hold the model's first-stage output, unknown before
    the run: they are rendered with an empty output (``exact`` False: their tokens are a lower bound and the
    cache cannot be asked). None when the prompts cannot be rendered without the model (a chat condition
    without a tokenizer)."""
    from audit.prompts.preprompts import preprompt_text
    from audit.prompts.render import Prompt
    from audit.run.conditions import _preprompt
    from audit.run.shot_pools import item_shots

    ds, cond, pool = session.dataset, session.config.conditions[condition], session.pool
    out: list[tuple[str, str, str, Any, bool, int]] = []
    for seed in cond.seeds:
        orders = range(cond.answer_orders) if cond.probe == "likelihood" else range(1)
        for order in orders:
            exact = True
            try:
                if cond.stage1_format is not None:
                    first = [ds.render(cond.stage1_format, it, shots, _preprompt(cond), order)
                             for it, shots in zip(items, item_shots(ds, pool, cond, seed, condition, items))]
                    target = generation_target(cond.stage1_max_new_tokens, generation_rule([p.text for p in first]))
                    out += [("generate", p.prefix, p.query, target, True, i) for i, p in enumerate(first)]
                    followup = preprompt_text(cond.followup)
                    prompts = [Prompt(p.prefix, f"{p.query}\n\n{followup}\n\n{ds.render(cond.format, it, [], '', order).query}")
                               for it, p in zip(items, first)]
                    exact = False
                else:
                    prompts = build_prompts(ds, cond, items, pool, seed, tokenizer, condition, order)
            except ConditionUnavailable:
                return None
            if cond.probe == "likelihood":
                owners = [i for i, it in enumerate(items) for _ in ds.options(it)]
                out += [("loglikelihood", r.prefix, r.query, r.continuation, exact, i)
                        for r, i in zip(likelihood_requests(ds, prompts, items), owners)]
            else:
                target = generation_target(cond.max_new_tokens, generation_rule([p.text for p in prompts]))
                out += [("generate", p.prefix, p.query, target, exact, i) for i, p in enumerate(prompts)]
    return out


def _tokens(tokenizer, work: list, lengths: dict[str, int]) -> list[int]:
    """The prompt tokens of each of these requests (shared prefix + own text; context and continuation for a likelihood
    request). Within a token or two per request of the engine's whole-context tokenisation (a merge across the
    prefix boundary), and fast: each prefix and each distinct own text is encoded once per plan (``lengths``
    remembers them across conditions: the few-shot conditions ask the same questions after other shots)."""
    from audit.backends.hf.tokenization import _encode_many

    prefixes = [p for p in dict.fromkeys(w[1] for w in work) if p and p not in lengths]
    lengths.update(zip(prefixes, (len(ids) for ids in _encode_many(tokenizer, prefixes))))
    rests = [w[2] + w[3] if w[0] == "loglikelihood" else w[2] for w in work]
    new = [r for r in dict.fromkeys(rests) if r not in lengths]
    for start in range(0, len(new), 1024):
        part = new[start : start + 1024]
        lengths.update(zip(part, (len(ids) for ids in tokenizer(part, add_special_tokens=False)["input_ids"])))
    return [(lengths[w[1]] if w[1] else 0) + lengths[rest] for w, rest in zip(work, rests)]


def _scaled_tokens(per_request: list[int], owners: list[int], counted: int, total: int) -> tuple[int, int]:
    """(prompt tokens of all ``total`` items, +- two standard errors) from those of ``counted`` of them
    (an even spread): the mean tokens per item times the items, with the finite-population correction."""
    if counted >= total:
        return sum(per_request), 0
    per_item = [0] * counted
    for n, i in zip(per_request, owners):
        per_item[i] += n
    mean = sum(per_item) / counted
    var = sum((x - mean) ** 2 for x in per_item) / max(counted - 1, 1)
    error = 2 * total * (var / counted * (1 - counted / total)) ** 0.5
    return round(mean * total), round(error)


def _fingerprint(kind: str, prefix: str, query: str, target) -> int:
    """A compact identity of a request (what the result cache would key it by), to find repeats in a run."""
    digest = hashlib.blake2b(f"{kind}\0{prefix}{query}\0{target}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _measure(spec: str, session: AuditSession):
    """(model key, backend or None, load seconds, why not) from loading the model for timing its conditions."""
    from audit.backends import load_backend
    from audit.backends.cached import SCORING_VERSION, _sha256_json

    from audit.run.session import _loading_text

    target = session.aliases.get(spec, spec)
    building = _loading_text(target).startswith("building")  # a reference model built now: the run will not pay that
    start = Seconds.start()
    try:
        backend = load_backend(target, session.backend_options)
        if building:
            backend.close()
            start = Seconds.start()
            backend = load_backend(target, session.backend_options)
    except AuditError as exc:
        return None, None, Seconds(0.0, 0.0), f"model not loadable for measuring ({exc})"
    freeze_long_lived()  # as the run does after its load
    return _sha256_json([backend.cache_key(), SCORING_VERSION])[:32], backend, Seconds.since(*start), "measured"


def _condition_costs(session: AuditSession, backend) -> dict[str, ConditionCost | str]:
    """Each condition's measured cost (conditions of one shape share it), or why it has none."""
    warm_up(backend, session)
    by_shape: dict[tuple, ConditionCost | str] = {}
    out: dict[str, ConditionCost | str] = {}
    for name, cond in session.config.conditions.items():
        key = shape_key(cond)
        if key not in by_shape:
            try:
                by_shape[key] = measure_condition(backend, session, name)
            except ConditionUnavailable as exc:
                by_shape[key] = f"cannot run on this model ({exc})"
        out[name] = by_shape[key]
    return out


def plan_session(session: AuditSession, cache_path: Path | None = None, measure: bool = True) -> list[ConditionPlan]:
    """Plan every model and condition of a prepared session. With ``measure``, loads each model once and runs
    each condition shape on a small sample of the items to estimate the time (``audit.run.plan_timing``)."""
    cache = session.result_cache()
    plans = []
    after: Seconds | None = None if measure else Seconds(0.0, 0.0)
    counted_items = session.items if len(session.items) <= COUNT_SAMPLE else spread(session.items, COUNT_SAMPLE)
    for spec in session.model_specs:
        tokenizer, tokenizer_source = None, ""
        model_key, backend, costs, load = None, None, {}, Seconds(0.0, 0.0)
        why = "not measured"
        if measure:  # the model first, as the run loads it (its tokenizer and transformers' imports are part of the load)
            model_key, backend, load, why = _measure(spec, session)
            tokenizer = getattr(backend, "tokenizer", None)
            tokenizer_source = "the loaded model's" if tokenizer is not None else ""
        if tokenizer is None:
            tokenizer, tokenizer_source = load_tokenizer(session.aliases.get(spec, spec), session.backend_options)
        if not measure and cache is not None:
            history = measured(Path(cache_path or getattr(cache, "path", None) or default_cache_path()), spec)
            model_key = history[0].model_key if history else None
        if backend is not None:
            costs = _condition_costs(session, backend)
            backend.close()
        if after is None:  # timed where the run pays it, after the first model: its load pays torch's import, not this
            after = measure_after_scoring(session)
        seen: set[int] = set()  # requests asked earlier in this run: answered by the run's cache
        lengths: dict[str, int] = {}  # token counts of prefixes and own texts seen so far
        for condition, cond in session.config.conditions.items():
            n = request_count(session.dataset, cond, session.items)
            n_counted = request_count(session.dataset, cond, counted_items)
            work = _work(session, condition, tokenizer, counted_items)  # one condition at a time: a large study's requests never all live
            tokens = token_error = cached = estimate = at_load = cpu = None
            basis = why
            if work is not None:
                if len(work) != n_counted:
                    raise RuntimeError(f"plan counted {len(work)} requests for '{condition}', expected {n_counted}")
                scale = n / n_counted if n_counted else 0.0
                hit = [False] * n_counted
                if model_key is not None and cache is not None:
                    keys = [request_key(model_key, w[0], w[1] + w[2], w[3]) if w[4] else None for w in work]
                    found = cache.get_many([k for k in keys if k is not None])
                    hit = [k is not None and k in found for k in keys]
                    cached = n if sum(hit) == n_counted else round(sum(hit) * scale)
                fresh = 0
                for (kind, prefix, query, target, exact, _), h in zip(work, hit):
                    mark = _fingerprint(kind, prefix, query, target) if exact else None
                    if not h and (mark is None or mark not in seen):
                        fresh += 1
                    if mark is not None:
                        seen.add(mark)
                if tokenizer is not None:
                    tokens, token_error = _scaled_tokens(_tokens(tokenizer, work, lengths), [w[5] for w in work],
                                                         len(counted_items), len(session.items))
                cost = costs.get(condition)
                if isinstance(cost, ConditionCost):
                    cpu = cost.seconds(len(session.items), len(cond.seeds)) * fresh / n_counted if n_counted else 0.0
                    estimate, at_load = cpu / cost.parallelism, cpu / cost.share
                    basis = cost.basis if fresh else ("all cached" if cached == n else "all asked earlier in this run (reused)")
                elif isinstance(cost, str):  # the model cannot run it: the run skips it
                    estimate, at_load, cpu, basis = 0.0, 0.0, 0.0, cost
            elif isinstance(costs.get(condition), str):  # (nor render its prompts: a chat condition)
                estimate, at_load, cpu, basis = 0.0, 0.0, 0.0, costs[condition]
            if cached is None and cache is not None and model_key is None and len(cache) == 0:
                cached = 0  # an empty cache holds nothing for any model
            first = condition == next(iter(session.config.conditions))
            extra = (load, after) if first else (Seconds(0.0, 0.0), Seconds(0.0, 0.0))
            if cpu is not None:
                cpu += extra[0].cpu + extra[1].cpu
                at_load += extra[0].wall + extra[1].wall
            plans.append(ConditionPlan(spec, condition, cond.probe, n, tokens, cached, estimate, basis, tokenizer_source,
                                       extra[0].free_wall, extra[1].free_wall, cpu, at_load, len(counted_items), token_error))
    return plans


def _total(plans: list[ConditionPlan], startup: Seconds) -> float | None:
    """Wall seconds of the run on this machine with its cores free (None when a condition has no estimate)."""
    known = [p.estimate_s for p in plans]
    return None if any(e is None for e in known) else startup.free_wall + sum(known) + sum(p.load_s + p.after_s for p in plans)


def _total_at_load(plans: list[ConditionPlan], startup: Seconds) -> float | None:
    known = [p.at_load_s for p in plans]
    return None if any(e is None for e in known) else startup.wall + sum(known)


def _machine(plans: list[ConditionPlan], startup: Seconds) -> dict:
    """What the wall estimates assume: the cores this process may use and how loaded the machine was while planning."""
    from audit.run.plan_timing import available_cores

    try:
        load = round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        load = None
    cpu = sum(p.cpu_s or 0.0 for p in plans) + startup.cpu
    at_load = _total_at_load(plans, startup)
    free = _total(plans, startup)
    return {"cores": available_cores(), "load_average": load,
            "share_while_planning": round(cpu / at_load, 3) if at_load else None,
            "share_cores_free": round(cpu / free, 3) if free else None}


def plan_json(session: AuditSession, plans: list[ConditionPlan], startup: Seconds | None = None) -> dict:
    """``startup``: what the run pays before its first model loads (imports, data, pytest), as this process paid it."""
    startup = startup or Seconds(0.0, 0.0)
    cpus = [p.cpu_s for p in plans]
    return {"dataset": session.dataset.name, "n_items": len(session.items),
            "conditions": [asdict(p) for p in plans],
            "total": {"requests": sum(p.requests for p in plans), "startup_s": round(startup.free_wall, 3),
                      "estimate_s": _total(plans, startup),
                      "estimate_at_load_s": _total_at_load(plans, startup),
                      "estimate_cpu_s": None if None in cpus else startup.cpu + sum(cpus),
                      "machine": _machine(plans, startup)}}


def format_plan(session: AuditSession, plans: list[ConditionPlan], startup: Seconds | None = None) -> str:
    def num(v):
        return "unknown" if v is None else f"{v:,}"

    header = ("model", "condition", "probe", "requests", "prompt tokens", "cached", "estimate", "basis")
    def tokens(p):
        return num(p.prompt_tokens) + (f" ±{p.prompt_tokens_error:,}" if p.prompt_tokens_error else "")

    rows = [(p.model, p.condition, p.probe, f"{p.requests:,}", tokens(p), num(p.cached),
             format_duration(p.estimate_s) if p.estimate_s is not None else "unknown", p.basis) for p in plans]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"bias-audit plan: {len(session.model_specs)} model(s), {len(session.config.conditions)} condition(s), "
             f"{len(session.items)} items of '{session.dataset.name}'"]
    for r in [header, tuple("-" * w for w in widths), *rows]:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    counted = min((p.counted_items for p in plans), default=len(session.items))
    if counted < len(session.items):
        lines.append(f"prompt tokens and cached: counted on {counted} of the {len(session.items):,} items (evenly spread) "
                     "and scaled; ± two standard errors; requests are exact")
    for model in dict.fromkeys(p.model for p in plans):
        lines.append(f"tokenizer of {model}: {next(p.tokenizer for p in plans if p.model == model)}")
    startup = startup or Seconds(0.0, 0.0)
    total = sum(p.requests for p in plans)
    estimate = _total(plans, startup)
    eta = format_duration(estimate) if estimate is not None else "unknown"
    parts = (f" with this machine's cores free (start-up {startup.free_wall:.0f} s, loading models "
             f"{sum(p.load_s for p in plans):.0f} s, conditions {sum(p.estimate_s or 0 for p in plans):.0f} s, gates, "
             f"resampling and report {sum(p.after_s for p in plans):.0f} s)")
    lines.append(f"total: {total:,} requests, estimated {eta}" + (parts if estimate is not None else ""))
    at_load, machine = _total_at_load(plans, startup), _machine(plans, startup)
    if estimate is not None and at_load and machine["share_while_planning"]:
        cpu = startup.cpu + sum(p.cpu_s or 0.0 for p in plans)
        lines.append(f"at the load while planning (load average {machine['load_average']} on {machine['cores']} cores, "
                     f"{machine['share_while_planning']:.0%} of a core): {format_duration(at_load)}; "
                     f"{cpu:,.0f} CPU-seconds either way")
    return "\n".join(lines)


def process_age() -> float | None:
    """Seconds since this process started (Linux ``/proc``), or None elsewhere."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        start = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19]) / ticks
        return float(Path("/proc/uptime").read_text().split()[0]) - start
    except (OSError, ValueError, IndexError, AttributeError):
        return None
