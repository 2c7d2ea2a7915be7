"""The report's "Does prompting fix it?" section is a view of models[*].debiasing."""

from audit.report.debiasing import debiasing_view


def test_each_strategy_is_a_row_with_its_paired_change_and_transfer():
    models = [{"name": "m", "debiasing": {
        "reference": "zero_shot", "reference_transfer": {"pearson": 0.9, "pearson_ci": [0.8, 0.95]},
        "strategies": [
            {"condition": "debias_fair", "strategy": "fairness instruction",
             "change": {"overall": {"a_sb": {"before": 0.3, "after": 0.1, "change": -0.2, "ci": [-0.3, -0.1]},
                                    "accuracy": {"before": 0.8, "after": 0.8, "change": 0.0, "ci": [-0.02, 0.02]}}},
             "transfer": {"pearson": 0.7, "pearson_ci": [0.5, 0.85], "persists": True}},
            {"condition": "debias_cot", "strategy": "chain of thought",
             "change": {"overall": {"a_sb": {"before": 0.3, "after": 0.4, "change": 0.1, "ci": [0.02, 0.2]}}},
             "transfer": None},
        ]}}, {"name": "no-table"}]
    [table] = debiasing_view(models)
    assert table["model"] == "m" and table["metrics"] == ["a_sb", "accuracy"]
    fair, cot = table["rows"]
    assert fair["changes"][0] == {"text": "-0.20 [-0.30, -0.10]", "verdict": "lower"}
    assert fair["changes"][1]["verdict"] == "no detectable change" and fair["persists"] == "yes"
    assert cot["changes"][0]["verdict"] == "higher" and cot["changes"][1] == {"text": "n/a", "verdict": ""}
    assert cot["transfer"] == "n/a" and cot["persists"] == "n/a"
    assert table["reference_transfer"] == "+0.90 [+0.80, +0.95]"


def test_no_table_no_section():
    assert debiasing_view([{"name": "m", "conditions": {}}]) == []
