"""The debiasing study on WinoBias: strategies as conditions, the paired change against zero-shot, the
two-stage (self-debiasing) conditions through a real model, and the debiasing gate."""

from __future__ import annotations

import json

import pytest

from audit import AuditSession, get_dataset, load_config
from audit.stats.paired import paired_resample_change

STUDY = ("intrinsic", "zero_shot", "preprompt_fair", "debias_explanation", "debias_reprompt", "debias_counter_shots")


def test_paired_change_resamples_twins_jointly():
    ds = get_dataset("winobias")
    items = get_dataset("winobias").load("generated", split="test", seed=0)[:80]
    gold = [it.referent for it in items]
    wrong = [it.distractor for it in items]
    same = paired_resample_change((items, gold), (items, list(gold)), ds.headline, key=ds.pair_key, n_resamples=200)
    assert same["overall"]["accuracy"] == {"before": 1.0, "after": 1.0, "change": 0.0, "ci": [0.0, 0.0]}
    worse = paired_resample_change((items, gold), (items, wrong), ds.headline, key=ds.pair_key, n_resamples=200)
    assert worse["overall"]["accuracy"]["change"] == -1.0 and worse["overall"]["accuracy"]["ci"] == [-1.0, -1.0]


@pytest.fixture(scope="module")
def study(tiny_model_dir):
    full = load_config(preset="study")
    overrides = {"max_items": 24, "n_resamples": 200, "min_items": 10,
                 "conditions": {n: full.conditions[n].model_dump() for n in STUDY}}
    overrides["conditions"]["debias_explanation"]["stage1_max_new_tokens"] = 4
    config = load_config(preset="study", overrides=overrides)
    session = AuditSession(config=config, model_specs=[str(tiny_model_dir)], use_cache=False)
    session.prepare()
    for condition in config.condition_names_for("debiasing_no_increase"):
        session.gate("debiasing_no_increase", str(tiny_model_dir), condition)
        session.gate("transfer", str(tiny_model_dir), condition)  # measures intrinsic too
    assert "zero_shot" not in config.condition_names_for("debiasing_no_increase")
    session.gate("debiasing_no_increase", str(tiny_model_dir), "zero_shot")  # asked anyway: skipped, says why
    return session, json.loads(json.dumps(session.results()))


def test_debiasing_table_on_winobias(study):
    session, results = study
    table = results["models"][0]["debiasing"]
    assert table["reference"] == "zero_shot" and table["headline_bias"] == "a_sb"
    rows = {r["condition"]: r for r in table["strategies"]}
    assert set(rows) == {"preprompt_fair", "debias_explanation", "debias_reprompt", "debias_counter_shots"}
    for row in rows.values():
        a_sb = row["change"]["overall"]["a_sb"]
        assert a_sb["change"] == pytest.approx(a_sb["after"] - a_sb["before"])
        assert a_sb["ci"][0] <= a_sb["ci"][1]
        assert set(row["transfer"]) >= {"pearson", "pearson_ci", "persists"}
    zero = results["models"][0]["conditions"]["zero_shot"]["a_sb"]
    assert rows["preprompt_fair"]["change"]["overall"]["a_sb"]["before"] == pytest.approx(zero)


def test_two_stage_conditions_call_the_model_twice(study):
    session, results = study
    choices = results["models"][0]["choices"]["debias_reprompt"]
    assert all(c["output"] is not None for c in choices)  # the first-stage generation is recorded
    assert results["models"][0]["conditions"]["debias_explanation"]["two_stage"] == {
        "stage1_format": "_stage1_explain", "followup": "followup_explanation"}


def test_debiasing_gate_applies_to_strategies_only(study):
    session, results = study
    by_condition = {g["condition"]: g for g in results["gates"] if g["metric"] == "debiasing_no_increase"}
    assert by_condition["zero_shot"]["status"] == "skipped" and "not a debiasing strategy" in by_condition["zero_shot"]["message"]
    assert by_condition["preprompt_fair"]["status"] in ("pass", "fail")
    assert by_condition["preprompt_fair"]["estimate"] is not None
