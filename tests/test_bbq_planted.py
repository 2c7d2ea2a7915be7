"""Ground truth for BBQ: the audit recovers the bias planted in ``reference-bbq:planted`` per category
(Age planted, Religion not), the debiasing effect planted for prompts that mention stereotypes, and the
full transfer of a rule applied in every format; BBQ gates skip on WinoBias runs and vice versa.

``reference-bbq`` is a planted-rule backend, not a neural LM (see ``audit.datasets.bbq.reference_model``)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

import pytest

from audit import AuditSession, load_config
from shared_data import bbq_dir

pytestmark = pytest.mark.skipif(bbq_dir() is None, reason="official BBQ files not found (../shared/bbq)")

CONDITIONS = {
    "intrinsic": {"format": "bbq_intrinsic"},
    "zero_shot": {"format": "bbq_zero_shot", "answer_orders": 3},
    "preprompt_fair": {"format": "bbq_zero_shot", "answer_orders": 3, "preprompt": "fair_all", "strategy": "fairness instruction"},
    "debias_custom": {"format": "bbq_zero_shot", "answer_orders": 3, "strategy": "custom text",
                      "preprompt_text": "Answer from what the context states."},
    "debias_reprompt": {"format": "bbq_zero_shot", "stage1_format": "bbq_zero_shot", "stage1_max_new_tokens": 8,
                        "followup": "followup_reprompt", "strategy": "self-debiasing: re-prompting"},
}


def _session(model: str, max_items: int = 1200) -> AuditSession:
    overrides = {"data": f"bbq:{bbq_dir() / 'data'}#Age,Religion", "max_items": max_items, "n_resamples": 400,
                 "min_items": 50, "conditions": CONDITIONS}
    session = AuditSession(config=load_config(preset="bbq", overrides=overrides), model_specs=[model], use_cache=False)
    session.prepare()
    return session


@pytest.fixture(scope="module")
def planted() -> dict:
    session = _session("reference-bbq:planted")
    for gate in ("bbq_s_amb", "bbq_s_dis", "bbq_accuracy_disambig"):
        for condition in session.config.condition_names_for(gate):
            session.gate(gate, "reference-bbq:planted", condition)
    session.gate("transfer", "reference-bbq:planted", "zero_shot")
    session.gate("debiasing_no_increase", "reference-bbq:planted", "preprompt_fair")
    assert session.gate_inapplicable("a_sb") == "gate 'a_sb' applies to winobias, not to bbq"
    return json.loads(json.dumps(session.results()))  # as written to results.json


def _category(results, condition, category):
    return results["models"][0]["conditions"][condition]["categories"][category]


@pytest.mark.parametrize("condition", ["intrinsic", "zero_shot"])
def test_planted_age_bias_is_recovered(planted, condition):
    age = _category(planted, condition, "Age")
    for metric in ("s_dis", "s_amb"):
        assert age[metric] > 0.3 and age[f"{metric}_ci"][0] > 0, (metric, age[metric], age[f"{metric}_ci"])
    per_template = [v for v in age["o_sb_per_template"].values() if v is not None]
    assert statistics.mean(per_template) > 0.3
    assert sum(v > 0 for v in per_template) >= 0.8 * len(per_template)
    assert age["a_sb_ci"][0] > 0.3


@pytest.mark.parametrize("condition", ["intrinsic", "zero_shot"])
def test_no_bias_found_where_none_was_planted(planted, condition):
    religion = _category(planted, condition, "Religion")
    for metric in ("s_dis", "s_amb"):
        lo, hi = religion[f"{metric}_ci"]
        assert lo <= 0 <= hi, (metric, religion[metric], (lo, hi))
    per_template = [v for v in religion["o_sb_per_template"].values() if v is not None]
    assert abs(statistics.mean(per_template)) < 0.15  # signed: the noise's picks cancel out


def test_transfer_over_templates_and_the_gates(planted):
    transfer = planted["models"][0]["transfer"]["zero_shot"]
    assert transfer["n"] >= 30 and transfer["pearson"] > 0.9 and transfer["pearson_ci"][0] > 0.5
    outcomes = {(g["metric"], g["condition"]): g for g in planted["gates"]}
    assert outcomes[("bbq_s_amb", "zero_shot")]["status"] == "fail"
    assert "worst category Age" in outcomes[("bbq_s_amb", "zero_shot")]["message"]
    assert outcomes[("transfer", "zero_shot")]["status"] == "fail"  # a biased bare model whose bias transfers
    assert outcomes[("bbq_accuracy_disambig", "zero_shot")]["status"] == "pass"


def test_debiasing_table_finds_the_planted_effect(planted):
    table = planted["models"][0]["debiasing"]
    assert table["reference"] == "zero_shot"
    rows = {r["condition"]: r for r in table["strategies"]}
    assert set(rows) == {"preprompt_fair", "debias_custom", "debias_reprompt"}
    fair = rows["preprompt_fair"]["change"]["categories"]
    # planted: a prompt mentioning stereotypes halves the bias term; Religion has none to halve
    assert fair["Age"]["s_amb"]["change"] < 0 and fair["Age"]["s_amb"]["ci"][1] < 0
    assert fair["Age"]["accuracy_ambig"]["change"] > 0
    lo, hi = fair["Religion"]["s_amb"]["ci"]
    assert lo <= 0 <= hi
    assert rows["preprompt_fair"]["transfer"]["persists"] is True
    for name in ("debias_custom", "debias_reprompt"):  # no trigger in the prompt: nothing changes
        assert rows[name]["change"]["categories"]["Age"]["s_amb"]["change"] == 0
    gate = next(g for g in planted["gates"] if g["metric"] == "debiasing_no_increase")
    assert gate["status"] == "pass" and gate["estimate"] < 0


def test_results_hold_items_and_index_selections(planted):
    choice = planted["models"][0]["choices"]["zero_shot"][0]
    item = planted["items"][choice["item"]]
    assert choice["selected"] in (0, 1, 2) and len(choice["scores"]) == 3
    assert item["answers"][item["label"]] and item["category"] in ("Age", "Religion")
    assert planted["dataset"] == "bbq" and "CC BY 4.0" in planted["bbq"]["attribution"]


def test_fair_reference_shows_no_bias():
    session = _session("reference-bbq:fair", max_items=600)
    summary = session.summary("reference-bbq:fair", "zero_shot")
    for category in ("Age", "Religion"):
        for metric in ("s_dis", "s_amb"):
            lo, hi = summary["categories"][category][f"{metric}_ci"]
            assert lo <= 0 <= hi, (category, metric)


def test_winobias_run_skips_bbq_gates():
    config = load_config(preset="study", overrides={"max_items": 40, "min_items": 20})
    session = AuditSession(config=config, model_specs=["reference-fair"], use_cache=False)
    session.prepare()
    assert session.gate_inapplicable("bbq_s_amb") == "gate 'bbq_s_amb' has no threshold in the config"
    config = load_config(preset="study", overrides={"max_items": 40, "min_items": 20, "gates": load_config(preset="bbq").model_dump()["gates"]})
    session = AuditSession(config=config, model_specs=["reference-fair"], use_cache=False)
    session.prepare()
    assert session.gate_inapplicable("bbq_s_amb") == "gate 'bbq_s_amb' applies to bbq, not to winobias"
    assert session.gate_inapplicable("debiasing_no_increase") is None  # generic: applies to WinoBias too


@pytest.fixture(scope="module")
def cli_paper_b(tmp_path_factory):
    """The whole paper-b preset through `bias-audit run` on a subsample (about 2 minutes on a busy CPU)."""
    tmp_path = tmp_path_factory.mktemp("paper-b")
    config = tmp_path / "bias-audit.toml"
    config.write_text('preset = "paper-b"\nmax_items = 200\nn_resamples = 200\nmin_items = 20\n')
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "audit.cli", "run", "--config", str(config), "--model", "reference-bbq:planted",
                           "--data", f"bbq:{bbq_dir() / 'data'}#Age,Religion", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    return proc, out


@pytest.mark.slow
def test_cli_paper_b_writes_bbq_results(cli_paper_b):
    proc, out = cli_paper_b
    results = json.loads((out / "results.json").read_text())
    model = results["models"][0]
    assert set(model["conditions"]) == set(load_config(preset="paper-b").conditions)
    assert model["transfer"]["zero_shot"]["n"] > 10
    assert len(model["debiasing"]["strategies"]) == 6
    assert proc.returncode == 1, proc.stderr[-2000:]  # the planted bias fails gates


@pytest.mark.slow
def test_cli_paper_b_writes_the_report(cli_paper_b):
    proc, out = cli_paper_b
    assert "Traceback" not in proc.stdout + proc.stderr
    assert (out / "report.html").is_file()
