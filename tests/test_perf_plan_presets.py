"""``bias-audit plan`` on every shipped preset: it counts exactly the requests a run sends (seeds, answer
orders, both stages of a two-stage condition) and never stops with an internal error; an internal error
exits 3, not 2."""

from __future__ import annotations

import pytest

from audit import AuditOptions
from audit.run.conditions import request_count
from audit.run.plan import plan_session
from audit import build_session
from shared_data import bbq_dir

PRESETS = ["default", "study", "bbq", "paper-b"]


def _session(preset: str, tmp_path, monkeypatch):
    monkeypatch.setenv("BIAS_AUDIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "bias-audit.toml").write_text(f'preset = "{preset}"\nmax_items = 12\nmin_items = 4\n', encoding="utf-8")
    data = None
    if preset in ("bbq", "paper-b"):
        folder = bbq_dir()
        if folder is None:
            pytest.skip("official BBQ files not available")
        data = f"bbq:{folder / 'data'}"
    options = AuditOptions(model=["reference-biased"], config=str(tmp_path / "bias-audit.toml"), data=data)
    return build_session(options, root=tmp_path)


@pytest.mark.parametrize("preset", PRESETS)
def test_plan_counts_every_shipped_preset(preset, tmp_path, monkeypatch):
    session = _session(preset, tmp_path, monkeypatch)
    plans = plan_session(session, measure=False)
    assert [p.condition for p in plans] == list(session.config.conditions)
    for p in plans:
        cond = session.config.conditions[p.condition]
        assert p.requests == request_count(session.dataset, cond, session.items)
        per_seed = p.requests // len(cond.seeds)
        if cond.probe == "likelihood":
            options = sum(len(session.dataset.options(it)) for it in session.items)
            stage1 = len(session.items) if cond.stage1_format else 0
            assert per_seed == (options + stage1) * cond.answer_orders  # the paper-b/bbq crash: orders ignored
        assert p.prompt_tokens is None or p.prompt_tokens > p.requests


def test_plan_measures_paper_b_without_crashing(tmp_path, monkeypatch):
    """The measured plan (every condition shape run on a sample, the work after scoring on a shadow run) on
    paper-b with the reference model: an estimate for every condition, none negative. paper-b holds the bbq
    preset's two conditions as they are there, so this covers bbq's shapes too (the study's are measured
    below; every preset's counting above)."""
    session = _session("paper-b", tmp_path, monkeypatch)
    plans = plan_session(session)
    assert [p.condition for p in plans] == list(session.config.conditions)
    assert all(p.estimate_s is not None and p.estimate_s >= 0 and p.cpu_s is not None for p in plans)
    assert sum(p.estimate_s for p in plans) > 0 and plans[0].after_s > 0


def test_plan_times_each_condition_shape_on_a_real_sample(tmp_path, monkeypatch):
    """The estimate comes from running each condition (one per shape) on a small and a batch-sized sample
    of the items through the run's own code, and timing what follows the scores on a full-size shadow run."""
    import audit.run.plan_timing as timing

    calls = []
    real = timing._timed_run
    monkeypatch.setattr(timing, "_timed_run", lambda b, s, name, c, items: calls.append((name, len(items))) or real(b, s, name, c, items))
    session = _session("study", tmp_path, monkeypatch)
    plans = {p.condition: p for p in plan_session(session)}
    fresh = [p for p in plans.values() if not p.basis.startswith("all asked earlier")]
    assert all(p.estimate_s is not None and p.estimate_s > 0 and p.basis.startswith("measured now") for p in fresh)
    # the study repeats some shot draws (e.g. balanced occupations = the plain k=8 draw): those cost nothing
    assert all(p.estimate_s == 0.0 for p in plans.values() if p not in fresh)
    measured = {name for name, n in calls if n > 1}
    shapes = {timing.shape_key(c) for c in session.config.conditions.values()}
    assert len(measured) == len(shapes) <= len(plans)  # conditions of one shape share one measurement
    first = next(iter(plans.values()))
    assert first.load_s > 0 and first.after_s > 0
    assert all(p.load_s == 0 and p.after_s == 0 for p in list(plans.values())[1:])
    # A condition over three seeds costs about three times its one-seed twin (same shape, same measurement).
    cost = timing.ConditionCost(0.5, 0.1, "")
    assert cost.seconds(12, 3) == pytest.approx(3 * cost.seconds(12, 1))
    assert cost.seconds(0, 3) == 0.0


def test_plan_counts_requests_repeated_across_conditions_once(tmp_path, monkeypatch):
    """Requests identical across conditions are answered once per run: the later condition's estimate
    leaves them out (here: a condition listed twice under two names costs nothing the second time)."""
    from audit.config import ConditionConfig

    session = _session("default", tmp_path, monkeypatch)
    conditions = dict(session.config.conditions)
    conditions["zero_shot_again"] = ConditionConfig(**session.config.conditions["zero_shot"].model_dump())
    session.config = session.config.model_copy(update={"conditions": conditions})
    plans = {p.condition: p for p in plan_session(session)}
    assert plans["zero_shot"].estimate_s > 0
    assert plans["zero_shot_again"].estimate_s == 0.0
    assert plans["zero_shot_again"].basis.startswith("all asked earlier")


def test_a_condition_the_model_cannot_run_costs_nothing(tmp_path, monkeypatch):
    """A condition the model cannot run (a chat condition on a model without a chat template) is skipped by
    the run: the plan estimates it at 0 s and still gives a total (it gave none: study on the tiny GPT-2)."""
    from audit.config import ConditionConfig
    from audit.errors import ConditionUnavailable
    import audit.run.plan as plan

    session = _session("default", tmp_path, monkeypatch)
    conditions = dict(session.config.conditions)
    conditions["chat_zero_shot"] = ConditionConfig(**{**session.config.conditions["zero_shot"].model_dump(), "chat": True})
    session.config = session.config.model_copy(update={"conditions": conditions})
    real = plan.measure_condition

    def measure(backend, session, name):
        if session.config.conditions[name].chat:
            raise ConditionUnavailable("the model has no chat template")
        return real(backend, session, name)

    monkeypatch.setattr(plan, "measure_condition", measure)
    plans = {p.condition: p for p in plan_session(session)}
    assert plans["chat_zero_shot"].estimate_s == 0.0 and "cannot run" in plans["chat_zero_shot"].basis
    assert plans["zero_shot"].estimate_s > 0
    total = plan.plan_json(session, list(plans.values()))["total"]
    assert total["estimate_s"] is not None and total["estimate_cpu_s"] is not None


def test_internal_error_in_plan_exits_3(tmp_path, monkeypatch, capsys):
    from audit.cli.commands import main

    session = _session("default", tmp_path, monkeypatch)
    monkeypatch.setattr("audit.run.conditions.request_count", lambda *a: -1)
    monkeypatch.setattr("audit.run.plan.request_count", lambda *a: -1)
    monkeypatch.chdir(tmp_path)
    assert session is not None
    code = main(["plan", "--model", "reference-biased"])
    assert code == 3
    assert "internal error" in capsys.readouterr().err


def test_plan_times_the_work_after_scoring_after_the_first_model_as_the_run_pays_it(tmp_path, monkeypatch):
    """The run loads its first model (importing torch and transformers) before any gate or report; the plan
    times its phases in that order, so the imports count in the model's load and the work after scoring pays
    only its own (timed first, it took torch's import and the load looked 2 s short: bbq, reference model)."""
    import audit.run.plan as plan_module
    from audit.run.plan_timing import Seconds

    session = _session("default", tmp_path, monkeypatch)
    order = []
    monkeypatch.setattr(plan_module, "_measure", lambda spec, s: (order.append(("load", spec)), (None, None, Seconds(2.0, 2.0), "x"))[1])
    monkeypatch.setattr(plan_module, "measure_after_scoring", lambda s: (order.append(("after", None)), Seconds(3.0, 3.0))[1])
    plans = plan_session(session)
    assert order == [("load", "reference-biased"), ("after", None)]
    first = plans[0]
    assert (first.load_s, first.after_s) == (2.0, 3.0) and all(p.load_s == p.after_s == 0.0 for p in plans[1:])
