"""The report's summary layer writes what the record's dataset declares, never what it guesses from names:
a toy dataset's own statistic, gate field, summary sentence, table column and compared quantity appear
with its labels; a BBQ record's summary and terminal table carry no WinoBias word."""

from __future__ import annotations

import re

import pytest

import audit.datasets as registry
from audit.datasets.base import Dataset
from audit.datasets.report_data import (ComparedQuantity, Estimate, Finding, Interval, Quantity, RecordField, Where)
from audit.report.compare import compare_runs
from audit.report.quantities import Numbers
from audit.report.summary import executive_summary
from audit.report.tables import step_summary, transfer_table

WINOBIAS_WORDS = re.compile(r"occupation|pronoun|O-SB|A-SB|\bRPA\b|noise floor|\u03b8", re.I)
SCORE = RecordField("toy score", (0.0, 1.0), ("toy", "score"))


class Toy(Dataset):
    report_fields = {"score": SCORE}
    report_gate_fields = {"toy_gate": "score"}
    report_summary_rules = ("verdict", "toy_rule")
    report_table_header = ("toy score [95% CI]",)

    def load(self, source, *, split, seed):
        return []

    def options(self, item):
        return ("a", "b")

    def gold(self, item):
        return "a"

    def pair_key(self, item):
        return item

    def map_answer(self, text, item):
        return None

    def summarize(self, items, selections, boot):
        return {}

    def bias_by_unit(self, items, selections):
        return {}

    def report_statement(self, rule, results, unauditable=()):
        assert rule == "toy_rule"
        return Finding("toy_rule", "Toy finding", ("worst: ", Quantity("m", "c", "score"), " ", Interval([0.1, 1.2], "score"),
                                                   " in ", Where((("m", "c"),)), "."), True)

    def report_table_cells(self, cond):
        return ((Estimate(cond["toy"]["score"], cond["toy"]["ci"]),),)

    def report_comparisons(self):
        return (ComparedQuantity("score", "toy score", "toy score paired over units (> 0: worse)", SCORE,
                                 lambda now, before, boot: (now["toy"]["score"] - before["toy"]["score"], (0.05, 0.15))),)


@pytest.fixture
def toy():
    registry.register_dataset("toy-summary", Toy)
    yield
    registry._REGISTRY.pop("toy-summary", None)
    registry._INSTANCES.pop("toy-summary", None)


def record(dataset: str, cond: dict, gates: list | None = None) -> dict:
    return {"schema_version": "1.0", "dataset": dataset, "verdict": "pass", "items": {}, "gates": gates or [],
            "summary": {"passed": 1, "failed": 0, "waived": 0, "skipped": 0},
            "provenance": {"config": {"n_resamples": 200, "seed": 0}},
            "models": [{"name": "m", "conditions": {"c": cond}, "transfer": {}, "choices": {}}]}


def toy_gate(estimate: float) -> dict:
    return {"id": "toy_gate[m-c]", "model": "m", "condition": "c", "metric": "toy_gate", "status": "pass",
            "estimate": estimate, "ci": [0.3, 0.5], "bound": "upper", "bound_value": 0.5, "threshold": 0.6,
            "direction": "max", "message": "", "waiver_reason": None}


def test_the_summary_states_the_datasets_own_rule_with_its_label_and_range(toy):
    results = record("toy-summary", {"toy": {"score": 0.42, "ci": [0.3, 0.5]}}, [toy_gate(0.42)])
    verdict, finding = executive_summary(results)
    assert (verdict.key, finding.key, finding.title, finding.fired) == ("verdict", "toy_rule", "Toy finding", True)
    assert finding.plain == "worst: 0.420 [0.100, 1.000] in m under c."  # the interval clipped to the declared range
    assert 'data-label="toy score"' in finding.text and 'value="0.42"' in finding.text


def test_a_gate_reads_the_declared_field_only_where_its_estimate_is_that_value(toy):
    results = record("toy-summary", {"toy": {"score": 0.42, "ci": [0.3, 0.5]}}, [toy_gate(0.42)])
    numbers = Numbers(results)
    assert numbers.gate_label(toy_gate(0.42)) == "toy score" and numbers.gate_field(toy_gate(0.42)) == "score"
    assert numbers.gate_field(toy_gate(0.41)) is None  # a different number: a statistic of the gate's own
    assert numbers.gate_range(toy_gate(0.42)) == (0.0, 1.0)


def test_the_terminal_table_and_the_comparison_use_the_declared_columns(toy):
    now = record("toy-summary", {"toy": {"score": 0.42, "ci": [0.3, 0.5]}, "other_rate": 0.25})
    before = record("toy-summary", {"toy": {"score": 0.32, "ci": [0.2, 0.4]}, "other_rate": 0.0})
    header, _, row = transfer_table(now).splitlines()
    assert header.split("  ")[:3] == ["model", "condition", "toy score [95% CI]"]
    assert row.split()[:6] == ["m", "c", "0.42", "[0.30,", "0.50]", "25%"]
    assert "| toy score [95% CI] |" in step_summary(now)
    compared = compare_runs(now, before)
    assert compared["quantities"] == [{"key": "score", "label": "toy score", "caption": "toy score paired over units (> 0: worse)"}]
    (r,) = compared["rows"]
    assert r["score_change"] == pytest.approx(0.1) and r["score_before"] == "0.320" and r["score_after"] == "0.420"
    assert r["score_worse"] and r["worse"] and not r["score_better"]


def test_a_bbq_record_has_its_own_columns_and_no_winobias_summary():
    cond = {"overall": {"s_amb": 0.3, "s_amb_ci": [0.2, 0.4], "s_dis": -0.1, "s_dis_ci": [-0.2, 0.0],
                        "accuracy_ambig": 0.6, "accuracy_disambig": 0.9},
            "a_sb": 0.2, "o_sb": {"t1": 0.2, "t2": -0.2}, "other_rate": 0.0}
    results = record("bbq", cond)
    table = transfer_table(results)
    assert "s_AMB [95% CI]" in table and "+0.30 [+0.20, +0.40]" in table and "0.60/0.90" in table
    assert not WINOBIAS_WORDS.search(table)
    assert [s.key for s in executive_summary(results)] == ["verdict"]
    compared = compare_runs(results, results)
    assert compared["quantities"] == [] and not any(k.startswith("a_sb") for k in compared["rows"][0])


def test_a_record_of_a_dataset_not_installed_here_shows_only_what_is_generic():
    results = record("not-installed", {"a_sb": 0.5, "other_rate": 0.0})
    assert transfer_table(results).splitlines()[0].split() == ["model", "condition", "other", "transfer", "r", "[95%",
                                                                "CI]", "Spearman", "\u03c1"]
    assert [s.key for s in executive_summary(results)] == ["verdict"]
    assert Numbers(results).label("a_sb") == "a_sb"  # undeclared: by its name, never a guessed label
