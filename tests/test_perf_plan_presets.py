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


def test_plan_measures_rates_by_request_kind(tmp_path, monkeypatch):
    session = _session("study", tmp_path, monkeypatch)
    plans = {p.condition: p for p in plan_session(session)}
    assert all(p.estimate_s is not None and p.estimate_s > 0 for p in plans.values())
    assert all("generations in" in p.basis for p in plans.values())  # the study generates: both kinds timed
    # A generation condition of a few prompts costs more per request than scoring one option.
    gen, lik = plans["intrinsic_generation"], plans["intrinsic"]
    assert gen.estimate_s / gen.requests > lik.estimate_s / lik.requests


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
