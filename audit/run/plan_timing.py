"""How long a run will take on this machine, from running a small real sample of it (``bias-audit plan``).

A condition's cost is not a rate per token measured on some other shape of request: a few-shot prefix is
computed once per call, an item's options share one row, answer orders are separate calls, generations stop
at their own lengths, and the result cache, tokenisation and Python around the model cost per request. So
the plan runs the condition itself, through the run's own code (``run_condition`` on the loaded model behind
a fresh result cache), on a sample of the items at hand: on half an engine batch's worth of items, on one
batch and on two or more (doubled until the sample takes ``MIN_SAMPLE_CPU_S``, where the run holds the items).
Three points give the condition's cost per seed as
``fixed + per_batch x batches + per_item x items``: what the half batch added to fill the batch is the cost
per item (rows, tokens); what each batch after the first added beyond its items is the cost per engine batch (a
generation batch steps until its longest row ends, whatever its rows; a scoring batch's forward call); the
rest of the first call is paid once per call (the shared prefix's pass, tokenising, committing). A run's
last batch is partial but costs its batch (measured: the study's 100 items are 4 generation batches of 32,
not 3.1). The run costs that times its seeds, for the items the cache does not hold. Conditions that differ
only in their seeds have the same shape (``shape_key``) and share one measurement.

After the scores are in, the run decides its gates (resampled summaries and intervals) and writes its record
and report: timed here by doing that on condition runs of the session's full size with random scores. Before it, ``bias-audit run`` starts pytest and collects the suite:
timed by collecting the same suite in a child process (``measure_pytest_start``).
"""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from audit.errors import AuditError, ConditionUnavailable

SHADOW = "plan-shadow"  # the model name of the shadow session that times the work after scoring
SMALL = 2  # the fewest items a sample batch holds (two, so that a generation batch still shares its prefix)
_BATCH = {"cuda": 256, "cpu": 32}  # contexts per engine batch when the backend does not say
# The largest sample of a condition runs at least this long where the run holds the items: on the tiny GPT-2 a
# 64-item sample took 0.06 CPU-s and the default preset's plan read its two conditions 35-40% low (session 11)
MIN_SAMPLE_CPU_S = 1.0


@dataclass(frozen=True)
class Seconds:
    """Wall-clock and CPU seconds of one piece of work: ``cpu`` this process's (all threads), ``main`` the CPU
    seconds of the thread that ran it (0: not known, e.g. a child process).

    On a machine with free cores the work takes about ``main`` in wall time: the thread that runs it is busy
    throughout (the torch threads it hands a matrix product to finish beside it). Measured wall time is not
    that on a shared machine: there it is mostly the other jobs' turns (the paper-b plan's samples ran at
    14-50% of a core, the run at 85%). Measured as well, on the reference model: the main thread's wall time
    less its waits for a core (``/proc/self/schedstat``) still came to 1.5x its CPU time at a load of 20 (its
    tokenizer's threads, themselves waiting for a core, kept it blocked), so that is not used."""

    wall: float
    cpu: float
    main: float = 0.0

    @property
    def free_wall(self) -> float:
        """This work's wall seconds on this machine with its cores free (see the class)."""
        return self.main if self.main > 0 else self.cpu

    @staticmethod
    def since(wall0: float, cpu0: float, main0: float = 0.0) -> "Seconds":
        return Seconds(time.perf_counter() - wall0, time.process_time() - cpu0, time.thread_time() - main0)

    @staticmethod
    def start() -> tuple[float, float, float]:
        return time.perf_counter(), time.process_time(), time.thread_time()


@dataclass(frozen=True)
class ConditionCost:
    """CPU seconds per seed of one condition shape: ``fixed + per_batch * ceil(items / batch) + per_item * items``.
    Turned into wall seconds two ways: on this machine with its cores free (``parallelism``: the samples' CPU
    seconds per CPU second of their main thread) and at the load while it was measured (``share``: CPU seconds
    per wall second)."""

    fixed: float
    per_item: float
    basis: str
    share: float = 1.0
    per_batch: float = 0.0
    batch: int = 1
    parallelism: float = 1.0

    def seconds(self, items: int, seeds: int) -> float:
        """CPU seconds of ``seeds`` runs over ``items`` items."""
        if not items:
            return 0.0
        return seeds * (self.fixed + self.per_batch * math.ceil(items / max(self.batch, 1)) + self.per_item * items)


def parallelism(s: Seconds, cores: int | None = None) -> float:
    """CPU seconds per wall second of this work on a free machine: its CPU over its main thread's (the
    threads it hands work to run beside it), at most the cores it may use."""
    cores = cores or available_cores()
    return max(min(s.cpu / s.free_wall if s.free_wall > 0 else 1.0, cores), 1e-6)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


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


def spread(items: list, n: int) -> list:
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
    """Run the condition (its first seed) on half an engine batch's worth of the session's items, on one and
    on two (or more, while that sample takes under ``MIN_SAMPLE_CPU_S``): filling the first batch gives the cost
    per item, the later batches' cost beyond their items the cost per batch, the rest of the first call's is
    paid once per call. Where the run's items are no more than the
    three samples hold (3.5 batches: 112 items on CPU), the seed itself is timed, once: the plan then costs
    what a seed of the run costs, not twice that (the study preset with ``max_items`` 100 on SmolLM2-135M: 224
    items sampled per condition, the plan 1,083 CPU-s for a run of about 600)."""
    cond = session.config.conditions[name]
    one_seed = _one_seed(cond)
    items = session.items
    batch = max(batch_contexts(backend), 2 * SMALL)
    half = batch // 2
    sampled = half + batch + 2 * batch  # the items one pass of the three samples runs
    if len(items) <= sampled:  # the samples would cost the run's own seed: time that seed instead, once
        whole = _timed_run(backend, session, name, one_seed, items)
        return ConditionCost(0.0, whole.cpu / len(items), f"measured now: all {len(items)} items in {whole.cpu:.2f} CPU-s "
                             f"({_share(whole):.0%} of a core)", _share(whole), parallelism=parallelism(whole))
    # a second try where the samples stay a small part of the run (at most a quarter of one seed's items)
    tries = 2 if 2 * sampled <= len(items) / 4 else 1
    times = [_quickest(backend, session, name, one_seed, spread(items, n), tries) for n in (half, batch, 2 * batch)]
    # the largest sample doubled while it takes under MIN_SAMPLE_CPU_S, within a quarter of the run's items
    # (an eighth with two tries): a batch's cost is the difference of two samples, so a short sample's noise
    # is multiplied by the run's batches
    big, most = 2 * batch, max(2 * batch, len(items) // (4 * tries))
    while times[-1].cpu < MIN_SAMPLE_CPU_S and 2 * big <= most:
        big *= 2
        times[-1] = _quickest(backend, session, name, one_seed, spread(items, big), tries)
    summed = Seconds(sum(t.wall for t in times), sum(t.cpu for t in times), sum(t.main for t in times))
    # fitted on CPU seconds (on a shared machine a sample's wall time is mostly the other jobs')
    fixed, per_batch, per_item = fit_cost([t.cpu for t in times], half, batch, big)
    basis = (f"measured now: {big} items in {times[2].cpu:.2f} CPU-s, {batch} in {times[1].cpu:.2f}, {half} in "
             f"{times[0].cpu:.2f} ({_share(summed):.0%} of a core)")
    return ConditionCost(fixed, per_item, basis, _share(summed), per_batch=per_batch, batch=batch,
                         parallelism=parallelism(summed))


def _quickest(backend, session, name: str, cond, items: list, tries: int = 2) -> Seconds:
    """The fewest CPU seconds of ``tries`` timed runs: a sample takes a fraction of a second, and another
    job's burst on a shared machine (torch's threads then spin waiting for a core) inflated single samples
    up to 10x (the study on the tiny GPT-2: 1.76 CPU-s for 64 items of a condition the run did in 0.28 for 100)."""
    return min((_timed_run(backend, session, name, cond, items) for _ in range(tries)), key=lambda t: t.cpu)


def fit_cost(seconds: list[float], half: int, batch: int, big: int | None = None) -> tuple[float, float, float]:
    """(fixed, per batch, per item) from the seconds of ``half``, ``batch`` and ``big`` (whole batches, default
    two) items, none negative (the machine's noise can make a larger sample the quicker). A full batch costs
    what each batch after the first added (``per_batch + batch * per_item``), so a run of whole batches is
    estimated from the two larger samples alone; the half batch only splits that cost for a run's partial
    last batch."""
    t_half, t_one, t_big = seconds
    full = max(t_big - t_one, 0.0) / ((big or 2 * batch) // batch - 1)
    per_item = min(max(t_one - t_half, 0.0) / (batch - half), full / batch)
    return max(t_one - full, 0.0), full - batch * per_item, per_item


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


def _synthetic_run(session, name: str, cond, seeds: int, items: list | None = None):
    """A run over ``items`` (default: the session's, every one ``seeds`` times) with seeded random scores."""
    from audit.run.conditions import ConditionRun

    ds, rng = session.dataset, random.Random(0)
    items = session.items if items is None else items
    run = ConditionRun(name, cond, ds, seeds=list(range(seeds)), cost={})
    for _ in range(seeds):
        scores = [tuple(rng.uniform(-9.0, -1.0) for _ in ds.options(it)) for it in items]
        selections = [ds.select(it, sc) for it, sc in zip(items, scores)]
        run.items += items
        run.selections += selections
        run.scores += scores if cond.probe == "likelihood" else [None] * len(scores)
        run.outputs += [None] * len(scores)
        run.per_seed.append(ds.per_seed(items, selections))
    return run


def measure_after_scoring(session) -> Seconds:
    """Seconds the run spends after its scores are in: every applicable gate on every condition it covers
    (each condition's resampled summary, transfer and debiasing intervals), results.json and the report.
    Timed by doing exactly that on a shadow session whose condition runs have the session's items, every
    seed, with seeded random scores. At full size: on paper-b, timing it on 300 and 600 items and
    extrapolating linearly gave 650 CPU-s for 10,860 items, where the run spent under 70 (the gates'
    resampling did not scale linearly from those samples; why is not established)."""
    return _after_scoring(session, session.items)


def _after_scoring(session, items: list) -> Seconds:
    from audit.gates import gate_spec
    from audit.run.session import AuditSession
    from audit.run.setup import write_outputs
    from audit.run.verdict import RunState

    cfg = session.config
    shadow = AuditSession(config=cfg, model_specs=[SHADOW], use_cache=False, dataset=session.dataset,
                          items=list(items), pool=session.pool, approved=session.approved)
    for name, cond in cfg.conditions.items():
        shadow._runs[(SHADOW, name)] = _synthetic_run(session, name, cond, len(cond.seeds), list(items))
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


def measure_pytest_start(suite: Path) -> Seconds:
    """What ``bias-audit run`` pays to start pytest and collect the suite before its first test: timed by
    collecting ``suite`` in a child process (pytest's import and collection; the audit plugin left out, its
    imports are the plan's own start-up, and so are the plugins the run leaves out, ``unused_plugin_args``).
    Zero seconds when that cannot be done. (With the cores free it takes its CPU time: collecting is one
    thread's work, reading files the operating system has cached.)"""
    from audit.run.setup import unused_plugin_args

    code = ("import sys, pytest; sys.exit(pytest.main([sys.argv[1], '--collect-only', '-q', '-p', 'no:cacheprovider', "
            "'-p', 'no:bias_audit', '-W', 'ignore', *sys.argv[2:]]))")
    start = time.perf_counter()
    try:
        child = subprocess.Popen([sys.executable, "-c", code, str(suite), *unused_plugin_args(suite)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, _, usage = os.wait4(child.pid, 0)
    except OSError:
        return Seconds(0.0, 0.0)
    return Seconds(time.perf_counter() - start, usage.ru_utime + usage.ru_stime)
