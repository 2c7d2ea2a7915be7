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


@pytest.mark.parametrize("preset", ["bbq", "paper-b"])
def test_plan_measures_the_bbq_presets_without_crashing(preset, tmp_path, monkeypatch):
    """The measured plan (every condition shape run on a sample, the work after scoring on a shadow run) on
    the BBQ presets with the reference model: an estimate for every condition, none negative."""
    session = _session(preset, tmp_path, monkeypatch)
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
