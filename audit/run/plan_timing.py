"""How long a run will take on this machine, from running a small real sample of it (``bias-audit plan``).

A condition's cost is not a rate per token measured on some other shape of request: a few-shot prefix is
computed once per call, an item's options share one row, answer orders are separate calls, generations stop
at their own lengths, and the result cache, tokenisation and Python around the model cost per request. So
the plan runs the condition itself, through the run's own code (``run_condition`` on the loaded model behind
a fresh result cache), on a sample of the items at hand: once on one engine batch's worth of items and once
on two. Two points give the condition's cost per seed as ``fixed + per_item x items`` (``per_item``: what
the second batch added; ``fixed``: the shared prefix's pass and everything else paid once per call); the
run costs that times its seeds, for the items the cache does not hold. Conditions that differ only in their
seeds have the same shape (``shape_key``) and share one measurement.

After the scores are in, the run decides its gates (resampled summaries and intervals) and writes its record
and report: timed here by doing that on condition runs of the session's full size with random scores.
"""

from __future__ import annotations

import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from audit.errors import AuditError, ConditionUnavailable

SHADOW = "plan-shadow"  # the model name of the shadow session that times the work after scoring
SMALL = 2  # the fewest items a sample batch holds (two, so that a generation batch still shares its prefix)
_BATCH = {"cuda": 256, "cpu": 32}  # contexts per engine batch when the backend does not say


@dataclass(frozen=True)
class Seconds:
    """Wall-clock and CPU seconds of one piece of work (CPU: this process's, all threads)."""

    wall: float
    cpu: float

    @staticmethod
    def since(wall0: float, cpu0: float) -> "Seconds":
        return Seconds(time.perf_counter() - wall0, time.process_time() - cpu0)

    @staticmethod
    def start() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()


@dataclass(frozen=True)
class ConditionCost:
    """Seconds per seed of one condition shape: ``fixed + per_item * items`` (wall clock; ``cpu_share``: CPU
    seconds per wall second while it was measured)."""

    fixed: float
    per_item: float
    basis: str
    cpu_share: float = 1.0

    def seconds(self, items: int, seeds: int) -> float:
        return seeds * (self.fixed + self.per_item * items) if items else 0.0


def shape_key(cond) -> tuple:
    """What decides a condition's cost per item: the same format, shots and their composition (a shot of
    another kind may be longer: measured, the paper-b k=8 variants cost 1.7x the plain draw), pre-prompt,
    chat template, stages, token budgets, answer orders and normalisation; not the seeds."""
    import json

    return (json.dumps(cond.composition(), sort_keys=True), cond.probe, cond.format, cond.shots, cond.preprompt,
            cond.preprompt_text, cond.chat, cond.stage1_format,
            cond.stage1_max_new_tokens if cond.stage1_format else None, cond.followup,
            cond.max_new_tokens if cond.probe == "generation" else None, cond.answer_orders, cond.normalization)


def _one_seed(cond):
    return cond.model_copy(update={"seeds": [cond.seeds[0]]})


def batch_contexts(backend) -> int:
    """Contexts (or prompts) per engine batch: the HF scorer's batch size, else the device's default."""
    size = getattr(getattr(backend, "scorer", None), "batch_size", None)
    if isinstance(size, int) and size > 0:
        return size
    device = str(getattr(backend, "device_type", "cpu") or "cpu")
    return _BATCH.get(device, 32)


def _spread(items: list, n: int) -> list:
    """``n`` items evenly spread over the list (every category and length of item represented)."""
    if n >= len(items):
        return list(items)
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def _timed_run(backend, session, name: str, cond, items: list) -> Seconds:
    """Seconds for one seed of the condition on ``items``, through the run's code path behind a fresh
    on-disk result cache (so hashing and committing are paid as in the run, and nothing is answered
    from an earlier call)."""
    from audit.backends.cached import CachedBackend, ResultCache
    from audit.run.conditions import run_condition

    with tempfile.TemporaryDirectory(prefix="bias-audit-plan-") as tmp:
        cache = ResultCache(Path(tmp) / "sample.sqlite")
        try:
            cached = CachedBackend(backend, cache)
            start = Seconds.start()
            run_condition(cached, session.dataset, name, cond, items, session.pool)
            return Seconds.since(*start)
        finally:
            cache.close()


def measure_condition(backend, session, name: str) -> ConditionCost:
    """Run the condition (its first seed) on one and on two engine batches' worth of the session's items
    (all of them when that is no more): the second batch's cost is the cost per item, the rest of the first
    call's is paid once per call (the shared prefix's pass, tokenising, committing)."""
    cond = session.config.conditions[name]
    one_seed = _one_seed(cond)
    items = session.items
    batch = max(batch_contexts(backend), SMALL)
    if len(items) <= 2 * batch:  # the sample is the whole run
        whole = _timed_run(backend, session, name, one_seed, items)
        return ConditionCost(0.0, whole.wall / len(items), f"measured now: all {len(items)} items in {whole.wall:.2f} s", _share(whole))
    small = _timed_run(backend, session, name, one_seed, _spread(items, batch))
    big = _timed_run(backend, session, name, one_seed, _spread(items, 2 * batch))
    per_item = max(big.wall - small.wall, 0.0) / batch
    fixed = max(small.wall - batch * per_item, 0.0)
    share = _share(Seconds(big.wall + small.wall, big.cpu + small.cpu))
    return ConditionCost(fixed, per_item, f"measured now: {2 * batch} items in {big.wall:.2f} s, {batch} in {small.wall:.2f} s", share)


def _share(s: Seconds) -> float:
    return s.cpu / s.wall if s.wall > 0 else 1.0


def warm_up(backend, session) -> None:
    """One untimed item through the first conditions of each probe (first calls pay one-time setup)."""
    seen = set()
    for name, cond in session.config.conditions.items():
        if cond.probe in seen:
            continue
        seen.add(cond.probe)
        try:
            _timed_run(backend, session, name, _one_seed(cond), session.items[:1])
        except (AuditError, ConditionUnavailable):
            pass


def _synthetic_run(session, name: str, cond, seeds: int):
    """A run of the session's full size (every item, ``seeds`` times) with seeded random scores."""
    from audit.run.conditions import ConditionRun

    ds, rng = session.dataset, random.Random(0)
    run = ConditionRun(name, cond, ds, seeds=list(range(seeds)), cost={})
    for _ in range(seeds):
        scores = [tuple(rng.uniform(-9.0, -1.0) for _ in ds.options(it)) for it in session.items]
        selections = [ds.select(it, sc) for it, sc in zip(session.items, scores)]
        run.items += session.items
        run.selections += selections
        run.scores += scores if cond.probe == "likelihood" else [None] * len(scores)
        run.outputs += [None] * len(scores)
        run.per_seed.append(ds.per_seed(session.items, selections))
    return run


def measure_after_scoring(session) -> Seconds:
    """Seconds the run spends after its scores are in: every applicable gate on every condition it covers
    (each condition's resampled summary, transfer and debiasing intervals), results.json and the report.
    Timed by doing exactly that on a shadow session whose condition runs are of the session's full size
    (every item, every seed) with seeded random scores."""
    from audit.gates import gate_spec
    from audit.run.session import AuditSession
    from audit.run.setup import write_outputs
    from audit.run.verdict import RunState

    cfg = session.config
    shadow = AuditSession(config=cfg, model_specs=[SHADOW], use_cache=False, dataset=session.dataset,
                          items=session.items, pool=session.pool, approved=session.approved)
    for name, cond in cfg.conditions.items():
        shadow._runs[(SHADOW, name)] = _synthetic_run(session, name, cond, len(cond.seeds))
    strategies = any(c.strategy for c in cfg.conditions.values())
    start = Seconds.start()
    for gate in cfg.gates:
        try:
            spec = gate_spec(gate)
        except Exception:  # an unknown gate: the run reports it
            continue
        if shadow.gate_inapplicable(gate) or (spec.strategies_only and not strategies):
            continue
        for name in cfg.condition_names_for(gate):
            shadow.gate(gate, SHADOW, name)
    with tempfile.TemporaryDirectory(prefix="bias-audit-plan-") as tmp:
        write_outputs(shadow.results(), tmp, RunState())
    return Seconds.since(*start)
