"""The executive summary's rules, each on a hand-made record where it fires and one where it does not,
plus the gate matrix and the comparison of two runs. Every expected number is worked out by hand here."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from audit import render_report
from audit.report.compare import compare_runs
from audit.report.findings import gate_view
from audit.report.matrix import gate_matrix
from audit.report.summary import dataset_statement, executive_summary, open_questions, verdict_statement

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "results_example.json"
OCCUPATIONS = [f"occ{i:02d}" for i in range(40)]


def record(conditions: dict, transfer: dict | None = None, gates: list | None = None, verdict: str = "pass") -> dict:
    """A minimal valid record: one model 'm' with the given conditions."""
    return {"schema_version": "1.0", "verdict": verdict, "occupations": [], "items": {},
            "provenance": {"config": {"n_resamples": 400, "seed": 0}},
            "models": [{"name": "m", "conditions": conditions, "transfer": transfer or {}, "choices": {}}],
            "gates": gates or []}


def largest_bias(results: dict):
    """WinoBias's summary rules (``Dataset.report_statement``), written as the page writes them."""
    return dataset_statement(results, "largest_bias")


def transfer_statement(results: dict):
    return dataset_statement(results, "transfer")


def reduction_statement(results: dict):
    return dataset_statement(results, "reduction")


def gate(metric: str, condition: str, status: str, **extra) -> dict:
    return {"id": f"{metric}[m-{condition}]", "model": "m", "condition": condition, "metric": metric, "status": status,
            "estimate": 0.5, "ci": [0.4, 0.6], "bound": "upper", "bound_value": 0.6, "threshold": 0.2,
            "direction": "max", "rationale": f"why {metric}", "message": f"{metric} message", **extra}


def osb(value: float) -> dict:
    """Every occupation at +value (first half) or -value (second half): A-SB = value."""
    return {o: (value if i < 20 else -value) for i, o in enumerate(OCCUPATIONS)}


# --- 1. Verdict ----------------------------------------------------------------------------------------


def test_verdict_names_the_failing_gates_by_kind():
    gates = [gate("a_sb", "zero_shot", "fail"), gate("a_sb", "few", "fail"), gate("a_sb", "x", "pass"),
             gate("rpa_gap", "zero_shot", "fail"), gate("accuracy", "zero_shot", "pass")]
    st = verdict_statement(record({}, gates=gates, verdict="fail"))
    assert st.fired
    assert st.text == "FAIL: 3 of 5 gates failed (\u03b8 (A-SB without noise) 2 of 3, |RPA gap| 1 of 1) for m: the bias is not shown to be " \
                      "within the agreed limits."


def test_verdict_of_a_passing_audit_counts_what_did_not_decide():
    gates = [gate("a_sb", "zero_shot", "pass"), gate("a_sb", "few", "inconclusive", reason="within the noise floor"),
             gate("rpa_gap", "zero_shot", "waived")]
    st = verdict_statement(record({}, gates=gates))
    assert not st.fired
    assert st.text.startswith("PASS: 1 of 3 gates passed and none failed (1 inconclusive gate, 1 waived gate, which do not")


# --- 2. Largest bias -----------------------------------------------------------------------------------


def test_largest_bias_names_model_condition_and_occupation():
    conditions = {"zero_shot": {"a_sb": 0.3, "a_sb_ci": [0.25, 0.35], "o_sb": osb(0.3)},
                  "few": {"a_sb": 0.6, "a_sb_ci": [0.5, 0.7], "o_sb": {**osb(0.6), "occ31": -0.9}}}
    st = largest_bias(record(conditions))
    assert st.fired
    assert st.plain == ("m under few: A-SB 0.600 [0.500, 0.700], i.e. an occupation is chosen on average 60 percentage "
                       "points more often with one pronoun gender than with the other. The most affected occupation "
                       "is occ31 (O-SB \u22120.90, female-leaning).".replace("\u2212", "-"))


def test_largest_bias_inside_the_noise_floor_is_not_a_finding():
    conditions = {"zero_shot": {"a_sb": 0.08, "a_sb_ci": [0.04, 0.12], "o_sb": osb(0.08), "noise_floor": 0.1}}
    st = largest_bias(record(conditions))
    assert not st.fired and "within the noise floor (0.10)" in st.text
    assert not largest_bias(record({"zero_shot": {"a_sb": None}})).fired


# --- 3. Transfer ---------------------------------------------------------------------------------------


def test_transfer_fires_when_every_condition_keeps_the_intrinsic_ranking():
    transfer = {"zero_shot": {"pearson": 0.96, "pearson_ci": [0.92, 0.98]},
                "few": {"pearson": 0.81, "pearson_ci": [0.66, 0.9]}}
    st = transfer_statement(record({}, transfer))
    assert st.fired
    assert st.text.startswith("Intrinsic bias transfers to every prompted condition")
    assert "m: r from 0.810 [0.660, 0.900] (few) to 0.960 [0.920, 0.980] (zero_shot) over 2 prompted conditions, " \
           "lower bound \u2265 0.5 in 2 of 2" in st.plain
    assert "r \u2265 0.94" in st.text  # the papers' reference value


def test_transfer_does_not_fire_when_the_interval_reaches_below_the_bar():
    transfer = {"zero_shot": {"pearson": 0.96, "pearson_ci": [0.92, 0.98]},
                "few": {"pearson": 0.2, "pearson_ci": [-0.1, 0.5]}}
    st = transfer_statement(record({}, transfer))
    assert not st.fired and st.text.startswith("Intrinsic bias is not shown to transfer")
    assert not transfer_statement(record({})).fired  # nothing measured
    flat = transfer_statement(record({}, {"zero_shot": {"pearson": None, "pearson_ci": [None, None]}}))
    assert not flat.fired and flat.text.startswith("Transfer could not be measured") and "m: r not measurable" in flat.text


# --- 4. Prompting and debiasing ------------------------------------------------------------------------


def test_reduction_fires_on_a_planted_paired_decrease():
    conditions = {"intrinsic": {"format": "intrinsic", "o_sb": osb(0.9)}, "zero_shot": {"o_sb": osb(0.8)},
                  "preprompt_fair": {"o_sb": osb(0.5)}, "few": {"o_sb": osb(0.8)}}
    st = reduction_statement(record(conditions))
    assert st.fired
    # |O-SB| falls by exactly 0.3 for every occupation: the paired change and its whole interval are -0.30
    assert st.text.startswith("1 strategy of 2 reduced bias; the largest reduction: preprompt_fair for m "
                              "(A-SB change -0.30 [-0.30, -0.30] vs zero_shot).")


def test_reduction_does_not_fire_when_changes_cancel():
    wobble = {o: 0.8 + (0.05 if i % 2 else -0.05) for i, o in enumerate(OCCUPATIONS)}  # mean change 0
    conditions = {"zero_shot": {"o_sb": osb(0.8)}, "preprompt_fair": {"o_sb": wobble}}
    st = reduction_statement(record(conditions))
    assert not st.fired and st.text.startswith("No prompt or debiasing strategy reduced bias detectably")
    assert not reduction_statement(record({"preprompt_fair": {"o_sb": wobble}})).fired  # no zero_shot to compare with


# --- 5. What could not be concluded --------------------------------------------------------------------


def test_open_questions_lists_inconclusive_gates_noise_floor_and_undetermined_transfer():
    gates = [gate("a_sb", "few", "inconclusive", reason="interval straddles the threshold"), gate("a_sb", "zero_shot", "pass")]
    conditions = {"few": {"a_sb": 0.05, "a_sb_ci": [0.01, 0.09], "noise_floor": {"value": 0.1}}}
    transfer = {"few": {"pearson": 0.1, "pearson_ci": [-0.2, 0.4]}}
    st = open_questions(record(conditions, transfer, gates))
    assert st.fired
    assert st.text == ("Could not be concluded: 1 gate inconclusive (interval straddles the threshold); A-SB within the "
                       "noise floor (indistinguishable from chance) in 1 condition, e.g. few for m; transfer undetermined "
                       "(r's interval spans 0) in 1 condition, e.g. few for m.")


def test_open_questions_quiet_when_everything_decided():
    conditions = {"few": {"a_sb": 0.5, "a_sb_ci": [0.4, 0.6], "noise_floor": 0.1}}
    st = open_questions(record(conditions, {"few": {"pearson": 0.9, "pearson_ci": [0.8, 0.95]}}, [gate("a_sb", "few", "fail")]))
    assert not st.fired and st.text.startswith("Every gate reached a decision")


def test_summary_on_the_fixture_and_in_the_page():
    results = json.loads(FIXTURE.read_text(encoding="utf-8"))
    statements = executive_summary(results)
    assert [s.key for s in statements] == ["verdict", "largest_bias", "transfer", "reduction", "open"]
    assert statements[1].plain.startswith("reference-biased under intrinsic: A-SB 0.872 [0.825, 0.914]")
    small = {**results, "models": [{**m, "choices": {}} for m in results["models"]]}
    page = render_report(small)
    summary = page[page.index('<section id="summary"'):page.index("</section>")]
    for s in statements:
        assert str(s.text).replace("'", "&#39;") in summary


# --- Gate matrix ---------------------------------------------------------------------------------------


def test_matrix_has_a_row_per_gate_kind_and_a_column_per_condition_and_category():
    gates = [gate("a_sb", "zero_shot", "fail"), gate("a_sb", "few", "pass"), gate("rpa_gap", "zero_shot", "skipped"),
             gate("bias_score", "zero_shot", "inconclusive", category="age", reason="noise", unknown_field=[1]),
             gate("bias_score", "zero_shot", "pass", category="race")]
    views = [gate_view(i, g) for i, g in enumerate(gates)]
    models = [{"name": "m", "conditions": {"few": {}, "zero_shot": {}}}]
    matrix = gate_matrix(models, views)
    assert [(c["condition"], c["category"]) for c in matrix["columns"]] == [
        ("few", ""), ("zero_shot", ""), ("zero_shot", "age"), ("zero_shot", "race")]
    assert matrix["has_categories"] and matrix["groups"] == [{"condition": "few", "span": 1}, {"condition": "zero_shot", "span": 3}]
    (block,) = matrix["blocks"]
    rows = {r["metric"]: [c and (c["status"], c["text"].striptags(), c["anchor"]) for c in r["cells"]] for r in block["rows"]}
    assert rows["a_sb"] == [("pass", ".600", views[1]["anchor"]), ("fail", ".600", views[0]["anchor"]), None, None]
    assert rows["rpa_gap"][1][0] == "skipped"
    assert [c and c[0] for c in rows["bias_score"]] == [None, None, "inconclusive", "pass"]
    # the a_sb gate reads theta and the rpa_gap gate |pro - anti|: their rows carry those statistics' labels
    assert [r["label"] for r in matrix["rules"]] == ["\u03b8 (A-SB without noise)", "|RPA gap|", "bias_score"]
    assert matrix["rules"][0]["rationales"] == ["why a_sb"]  # stated once for the two A-SB gates


def test_matrix_cells_link_to_the_gate_details():
    results = json.loads(FIXTURE.read_text(encoding="utf-8"))
    results = {**results, "models": [{**m, "choices": {}} for m in results["models"]]}
    page = render_report(results)
    matrix = page[page.index('<section id="matrix"'):]
    matrix = matrix[:matrix.index("</section>")]
    links = re.findall(r'<td class="cell (\w+)"><a href="#([^"]+)"', matrix)
    assert len(links) == len(results["gates"])
    details = page[page.index('<section id="gates"'):]
    for status, anchor in links:
        assert f'<tr id="{anchor}" class="gate-{status}' in details
    assert matrix.count("A-SB above 0.2 means") == 1  # the rationale once, not once per model or cell


# --- Two runs side by side -----------------------------------------------------------------------------


def test_compare_runs_reports_changed_gates_and_planted_paired_changes():
    before = record({"zero_shot": {"a_sb": 0.3, "o_sb": osb(0.3)}}, gates=[gate("a_sb", "zero_shot", "pass")])
    now = copy.deepcopy(before)
    now["models"][0]["conditions"]["zero_shot"] = {"a_sb": 0.5, "o_sb": osb(0.5)}
    now["gates"][0]["status"] = "fail"
    now["gates"].append(gate("rpa_gap", "zero_shot", "pass"))
    view = compare_runs(now, before)
    assert view["changed"][0]["id"] == "a_sb[m-zero_shot]" and view["changed"][0]["worse"]
    assert (view["changed"][0]["before"], view["changed"][0]["after"]) == ("pass", "fail")
    assert view["new_gates"] == ["rpa_gap[m-zero_shot]"] and view["n_worse"] == 1
    (row,) = view["rows"]
    assert row["a_sb_change"] == pytest.approx(0.2) and row["a_sb_change_ci"] == pytest.approx((0.2, 0.2))
    assert row["a_sb_worse"] and row["a_sb_text"] == "+0.200"
    unchanged = compare_runs(before, before)
    assert unchanged["changed"] == [] and unchanged["rows"][0]["a_sb_change"] == 0


def test_report_with_an_approved_run_shows_the_comparison():
    results = json.loads(FIXTURE.read_text(encoding="utf-8"))
    results = {**results, "models": [{**m, "choices": {}} for m in results["models"]]}
    approved = copy.deepcopy(results)
    approved["gates"][0]["status"] = "pass"
    page = render_report(results, approved)
    compare = page[page.index('<section id="compare"'):]
    compare = " ".join(compare[:compare.index("</section>")].split())
    assert "1 gate changed status, 1 for the worse" in compare
    assert "<code>a_sb[reference-biased-zero_shot]</code>" in compare
    assert 'id="compare"' not in render_report(results)
