"""``bias-audit report --approved OLD.json --approved-as NAME``: the approved run's model is matched with this
run's model of a chosen name (issue 24: a differently named model compared nothing: "0 changed, 9 new, 9 no
longer run"); and ``--pdf-mode`` is checked before any work."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from audit import cli
from audit.report.compare import compare_runs, rename_approved

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "results_example.json"
OLD = "/tmp/checkpoints/step-1200"


@pytest.fixture()
def runs(tmp_path) -> tuple[dict, dict, Path, Path]:
    """This run (two models) and an approved run of one of them under its checkpoint path, one gate worse now."""
    current = json.loads(FIXTURE.read_text(encoding="utf-8"))
    approved = copy.deepcopy(current)
    approved["models"] = [m for m in approved["models"] if m["name"] == "reference-fair"]
    approved["gates"] = [g for g in approved["gates"] if g["model"] == "reference-fair"]
    approved["models"][0]["name"] = OLD
    for gate in approved["gates"]:
        gate["model"] = OLD
        gate["id"] = gate["id"].replace("[reference-fair-", f"[{OLD}-")
    first = next(g for g in approved["gates"] if g["status"] == "fail")
    first["status"] = "pass"  # approved then; failing now
    approved["verdict"] = "fail" if any(g["status"] == "fail" for g in approved["gates"]) else "pass"
    paths = tmp_path / "current.json", tmp_path / "approved.json"
    for path, record in zip(paths, (current, approved)):
        path.write_text(json.dumps(record), encoding="utf-8")
    return current, approved, *paths


def test_without_a_name_nothing_is_compared(runs):
    current, approved, *_ = runs
    compared = compare_runs(current, approved)
    assert compared["rows"] == [] and compared["changed"] == []
    assert len(compared["gone_gates"]) == len(approved["gates"])


@pytest.mark.parametrize("spec", ["reference-fair", f"{OLD}=reference-fair"])
def test_approved_as_matches_the_model_by_the_chosen_name(runs, spec):
    current, approved, *_ = runs
    renamed = rename_approved(approved, current, [spec])
    assert renamed["approved_as"] == {OLD: "reference-fair"} and approved["models"][0]["name"] == OLD  # a copy
    compared = compare_runs(current, renamed)
    assert {r["model"] for r in compared["rows"]} == {"reference-fair"}
    assert {r["condition"] for r in compared["rows"]} == set(current["models"][1]["conditions"])
    assert [c["id"] for c in compared["changed"]] == [next(g["id"] for g in approved["gates"] if g["status"] == "pass"
                                                          and g["id"].startswith("a_sb")).replace(OLD, "reference-fair")]
    assert compared["changed"][0]["worse"] and compared["gone_gates"] == []
    assert compared["renamed"] == [(OLD, "reference-fair")]


def test_the_report_says_which_model_was_compared_as_which(runs, tmp_path, capsys):
    *_, current_path, approved_path = runs
    out = tmp_path / "report.html"
    code = cli.main(["report", str(current_path), "--approved", str(approved_path), "--approved-as", "reference-fair",
                     "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    page = out.read_text(encoding="utf-8")
    assert f"The approved run's <code>{OLD}</code> is compared as <code>reference-fair</code>" in page
    assert "1 gate changed\nstatus, 1 for the worse" in page


@pytest.mark.parametrize("args, message", [
    (["--approved-as", "nobody"], "--approved-as 'nobody': this run has no model 'nobody' (it has reference-biased, reference-fair)"),
    (["--approved-as", "ghost=reference-fair"], f"--approved-as 'ghost=reference-fair': the approved run has no model 'ghost' (it has {OLD})"),
])
def test_a_name_that_is_not_there_is_one_line_and_exit_2(runs, tmp_path, capsys, args, message):
    *_, current_path, approved_path = runs
    code = cli.main(["report", str(current_path), "--approved", str(approved_path), *args, "--out", str(tmp_path / "r.html")])
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == f"bias-audit: error: {message}" and "Traceback" not in err
    assert not (tmp_path / "r.html").exists()


def test_the_short_form_needs_an_approved_run_of_one_model(runs, tmp_path, capsys):
    *_, current_path, _ = runs
    code = cli.main(["report", str(current_path), "--approved", str(current_path), "--approved-as", "reference-fair",
                     "--out", str(tmp_path / "r.html")])
    assert code == 2 and "the approved run has 2 models (reference-biased, reference-fair); say which: " \
                         "--approved-as APPROVED_NAME=reference-fair" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--approved-as", "x"], "--approved-as needs --approved RESULTS_JSON (the run to compare with)"),
    (["--pdf-mode", "tiny", "--pdf", "x.pdf"], "--pdf-mode 'tiny': expected one of full, executive"),
    (["--pdf-mode", "full"], "--pdf-mode needs --pdf PDF (the file to print to)"),
])
def test_option_mistakes_are_one_line_before_any_work(runs, tmp_path, capsys, args, message):
    *_, current_path, _ = runs
    code = cli.main(["report", str(current_path), *args, "--out", str(tmp_path / "r.html")])
    assert code == 2 and capsys.readouterr().err.strip() == f"bias-audit: error: {message}"
    assert not (tmp_path / "r.html").exists()
