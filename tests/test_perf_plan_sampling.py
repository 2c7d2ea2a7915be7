"""``bias-audit plan`` stays cheap on large sessions: above ``COUNT_SAMPLE`` items it counts prompt tokens,
cache hits and repeats on an even spread of the items (requests stay exact; tokens carry their sampling
error). Its cost model charges a run's partial last engine batch as a batch."""

from __future__ import annotations

import pytest

from audit import AuditOptions, build_session
from audit.run import plan_timing as timing
from audit.run.plan import _scaled_tokens, plan_session


def _session(tmp_path, monkeypatch, model: str, max_items: int):
    monkeypatch.setenv("BIAS_AUDIT_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "bias-audit.toml").write_text(f'preset = "default"\nmax_items = {max_items}\nmin_items = 4\n', encoding="utf-8")
    return build_session(AuditOptions(model=[model], config=str(tmp_path / "bias-audit.toml")), root=tmp_path)


def test_sampled_counts_keep_requests_exact_and_tokens_within_their_stated_error(tiny_model_dir, tmp_path, monkeypatch):
    import audit.run.plan as plan

    session = _session(tmp_path, monkeypatch, str(tiny_model_dir), 60)
    exact = {p.condition: p for p in plan_session(session, measure=False)}
    monkeypatch.setattr(plan, "COUNT_SAMPLE", 20)
    sampled = {p.condition: p for p in plan_session(session, measure=False)}
    assert set(sampled) == set(exact) and len(session.items) == 60
    for name, p in sampled.items():
        e = exact[name]
        assert e.counted_items == 60 and e.prompt_tokens_error == 0
        assert p.counted_items == 20 and p.requests == e.requests  # the request count never comes from the sample
        assert p.prompt_tokens_error > 0
        assert abs(p.prompt_tokens - e.prompt_tokens) <= p.prompt_tokens_error, (name, p.prompt_tokens, e.prompt_tokens)
        assert p.cached == e.cached == 0
    text = plan.format_plan(session, list(sampled.values()))
    assert "counted on 20 of the 60 items" in text and "±" in text


def test_scaled_tokens_by_hand():
    # 2 of 4 items counted: item 0 holds 10 + 20 tokens, item 1 holds 50; mean 40 per item -> 160 in all
    total, error = _scaled_tokens([10, 20, 50], [0, 0, 1], counted=2, total=4)
    assert total == 160
    # sd of (30, 50) = 14.142; 2 * 4 * sqrt(200 / 2 * (1 - 2 / 4)) = 56.57
    assert error == 57
    assert _scaled_tokens([10, 20, 50], [0, 0, 1], counted=2, total=2) == (80, 0)


def test_fit_cost_recovers_a_planted_cost_and_charges_the_partial_batch():
    fixed, per_batch, per_item, batch = 0.7, 2.0, 0.05, 32
    seconds = [fixed + per_batch * -(-n // batch) + per_item * n for n in (16, 32, 64)]
    got = timing.fit_cost(seconds, 16, 32)
    assert got == pytest.approx((fixed, per_batch, per_item))
    cost = timing.ConditionCost(got[0], got[2], "", per_batch=got[1], batch=batch)
    # 100 items are 4 batches (the last of 4 items), not 100 / 32 = 3.1
    assert cost.seconds(100, 1) == pytest.approx(fixed + 4 * per_batch + 100 * per_item)
    assert cost.seconds(100, 3) == pytest.approx(3 * cost.seconds(100, 1))
    # noise that makes the larger sample quicker never gives a negative rate
    assert all(v >= 0 for v in timing.fit_cost([1.0, 0.9, 0.8], 16, 32))
    # a noisy half batch never changes what whole batches cost: the two larger samples decide it
    fixed, per_batch, per_item = timing.fit_cost([0.1, 2.0, 3.0], 16, 32)
    assert fixed == pytest.approx(1.0) and per_batch + 32 * per_item == pytest.approx(1.0) and per_batch >= 0


def test_pytest_start_is_measured_on_the_suite(tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_x.py").write_text("def test_a():\n    pass\n", encoding="utf-8")
    took = timing.measure_pytest_start(suite)
    assert took.cpu > 0 and took.wall >= took.cpu * 0.5


def test_wall_on_free_cores_is_the_main_threads_cpu_and_at_load_the_measured_wall():
    """The plan's wall estimate does not take the load while it sampled for the run's: with the cores free
    a piece of work takes its main thread's CPU seconds (threads it hands work to run beside it); at the
    load while planning, its measured wall seconds."""
    from audit.run.plan import ConditionPlan, plan_json

    # two threads busy 1.5 s each, 3 CPU-s, 10 s on the clock at load: 2x parallel, 2 s on free cores
    work = timing.Seconds(wall=10.0, cpu=3.0, main=1.5)
    assert work.free_wall == 1.5 and timing.parallelism(work, cores=2) == pytest.approx(2.0)
    assert timing.parallelism(timing.Seconds(10.0, 6.0, 1.0), cores=2) == 2.0  # never above the cores
    assert timing.Seconds(wall=4.0, cpu=1.0).free_wall == 1.0  # a child process: its CPU seconds
    cost = timing.ConditionCost(0.0, 0.3, "", share=0.25, batch=32, parallelism=1.5)
    cpu = cost.seconds(10, 1)  # 3 CPU-s

    def plan(condition, load=0.0, after=0.0, extra_cpu=0.0, extra_wall=0.0):
        return ConditionPlan("m", condition, "likelihood", 10, None, 0, cpu / cost.parallelism, "", "", load, after,
                             cpu + extra_cpu, cpu / cost.share + extra_wall)

    plans = [plan("a", load=0.5, after=1.0, extra_cpu=1.5, extra_wall=6.0), plan("b")]

    class Session:
        dataset = type("D", (), {"name": "d"})()
        items = list(range(10))

    total = plan_json(Session(), plans, timing.Seconds(wall=8.0, cpu=2.0, main=2.0))["total"]
    assert total["estimate_s"] == pytest.approx(2.0 + 2 * 2.0 + 0.5 + 1.0)  # start-up + conditions + load + after, cores free
    assert total["estimate_at_load_s"] == pytest.approx(8.0 + 2 * 12.0 + 6.0)
    assert total["estimate_cpu_s"] == pytest.approx(2.0 + 2 * 3.0 + 1.5)
    assert total["machine"]["share_while_planning"] == pytest.approx(9.5 / 38.0, abs=1e-3)


def test_the_samples_never_cost_more_than_the_run(monkeypatch):
    """Three samples (16, 32 and 64 items on CPU) need 112 items: a run of no more is timed itself, once; a second
    try of each sample only where the samples stay within a quarter of the run's items."""
    from types import SimpleNamespace

    from audit.run import plan_timing

    calls: list[int] = []

    def timed(backend, session, name, cond, items):
        calls.append(len(items))
        return plan_timing.Seconds(wall=0.01 * len(items), cpu=0.01 * len(items), main=0.01 * len(items))

    monkeypatch.setattr(plan_timing, "_timed_run", timed)
    cond = SimpleNamespace(seeds=[0], model_copy=lambda update: SimpleNamespace(seeds=update["seeds"]))
    # 0.01 CPU-s an item: the largest sample doubles from 64 while under a second and within a quarter of the
    # run's items (an eighth with two tries)
    for n, expected in ((100, [100]), (112, [112]), (300, [16, 32, 64]), (900, [16, 16, 32, 32, 64, 64]),
                        (1100, [16, 16, 32, 32, 64, 64, 128, 128]), (20_000, [16, 16, 32, 32, 64, 64, 128, 128])):
        calls.clear()
        session = SimpleNamespace(config=SimpleNamespace(conditions={"c": cond}), items=list(range(n)))
        cost = plan_timing.measure_condition(SimpleNamespace(device_type="cpu"), session, "c")
        assert calls == expected, n
        assert sum(calls) <= n
        assert cost.per_item > 0


def test_short_samples_grow_until_a_batch_cost_is_measurable(monkeypatch):
    """A condition that costs milliseconds an item (the tiny GPT-2: 64 items in 0.06 CPU-s) is sampled on more
    items until the largest sample takes a second: a batch's cost is the difference of two samples, and each
    sample's noise (here 15%, seeded) is multiplied by the run's batches. Through ``measure_condition`` with
    planted costs: the median error of a 3,162-item run's estimate stays within 10% (0.08 at this seed; the three
    fixed samples alone: 0.15)."""
    import random
    import statistics
    from types import SimpleNamespace

    from audit.run import plan_timing

    per_item, fixed = 0.001, 0.01
    rng = random.Random(7)
    sizes: list[int] = []

    def timed(backend, session, name, cond, items):
        sizes.append(len(items))
        cpu = (fixed + per_item * len(items)) * rng.uniform(0.85, 1.15)
        return plan_timing.Seconds(wall=cpu, cpu=cpu, main=cpu)

    monkeypatch.setattr(plan_timing, "_timed_run", timed)
    cond = SimpleNamespace(seeds=[0], model_copy=lambda update: SimpleNamespace(seeds=update["seeds"]))
    session = SimpleNamespace(config=SimpleNamespace(conditions={"c": cond}), items=list(range(3162)))
    truth = fixed + per_item * 3162

    def errors() -> list[float]:
        out = []
        for _ in range(200):
            cost = plan_timing.measure_condition(SimpleNamespace(device_type="cpu"), session, "c")
            out.append(abs(cost.seconds(3162, 1) / truth - 1))
        return out

    grown = errors()
    assert max(sizes) == 256 and sum(sizes) / 200 <= 3162  # within an eighth of the run (two tries): 256, not 1,024
    assert statistics.median(grown) < 0.10
    sizes.clear()
    monkeypatch.setattr(plan_timing, "MIN_SAMPLE_CPU_S", 0.0)  # the three fixed samples alone
    fixed_three = errors()
    assert max(sizes) == 64
    assert statistics.median(fixed_three) > 1.5 * statistics.median(grown)
