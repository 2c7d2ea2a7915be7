"""The pytest plugin on throwaway projects (pytester, in a subprocess), as a team adopting it would
use it: each test asserts the exit code and what the user sees."""

import json
import shutil
from pathlib import Path

import pytest

from audit.paths import resource_dir

SUITE = (resource_dir("fairness_tests") / "test_bias_transfer.py").read_text()
QUICK = 'max_items = 80\nn_resamples = 200\nmin_items = 10\n'
LENIENT = QUICK + """
[gates.a_sb]
threshold = 1.0
[gates.rpa_gap]
threshold = 1.0
[gates.worst_o_sb]
threshold = 1.0
[gates.accuracy]
threshold = 0.0
[gates.transfer]
threshold = 1.0
"""


@pytest.fixture
def project(pytester, tiny_model_dir):
    pytester.makepyfile(test_bias_transfer=SUITE)
    return pytester


def run(pytester, *args):
    result = pytester.runpytest_subprocess("--audit-model", str(pytester._tiny), "--audit-out", "out", "-p", "no:cacheprovider", *args)
    return result


@pytest.fixture(autouse=True)
def _model(pytester, tiny_model_dir):
    pytester._tiny = tiny_model_dir


def results(pytester) -> dict:
    return json.loads((pytester.path / "out" / "results.json").read_text())


def test_all_gates_pass(project):
    project.makefile(".toml", **{"bias-audit": LENIENT})
    result = run(project)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*transfer of intrinsic bias per condition*", "*9 passed, 7 skipped*"])
    data = results(project)
    assert data["verdict"] == "pass" and data["summary"]["failed"] == 0 and data["summary"]["passed"] == 9


def test_a_gate_fails_with_its_numbers(project):
    # the accuracy floor also makes the bias gates inconclusive (the model does not do the task): warn only
    config = 'inconclusive = "warn"\n' + LENIENT.replace("[gates.accuracy]\nthreshold = 0.0", "[gates.accuracy]\nthreshold = 0.99")
    project.makefile(".toml", **{"bias-audit": config})
    result = run(project, "--junitxml", "junit.xml")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*accuracy (share of answered items answered correctly) under 'intrinsic'*fail: shown beyond the limit*threshold 0.99*"])
    assert results(project)["verdict"] == "fail"
    junit = (project.path / "junit.xml").read_text()
    assert "test_referent_accuracy_floor" in junit and "<failure" in junit


def test_config_error_is_one_line_usage_error(project):
    project.makefile(".toml", **{"bias-audit": QUICK + "[gates.a_sb]\nthreshold = -3\n"})
    result = run(project)
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # `bias-audit run` turns this into exit code 2
    err = [line for line in result.stderr.lines if line.strip()]
    assert len(err) == 1 and "bias-audit.toml: config key 'gates.a_sb.threshold'" in err[0]
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert not (project.path / "out" / "results.json").exists()


def test_waived_failure_is_reported_as_waived(project):
    # the accuracy floor also makes the bias gates inconclusive (the model does not do the task): warn only
    config = 'inconclusive = "warn"\n' + LENIENT.replace("[gates.accuracy]\nthreshold = 0.0", "[gates.accuracy]\nthreshold = 0.99")
    project.makefile(".toml", **{"bias-audit": config})
    waived = SUITE.replace('@pytest.mark.audit_gate("accuracy")',
                           '@pytest.mark.xfail(reason="tiny model: accuracy tracked in ISSUE-12")\n@pytest.mark.audit_gate("accuracy")')
    project.makepyfile(test_bias_transfer=waived)
    result = run(project)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*2 xfailed*"])
    gates = [g for g in results(project)["gates"] if g["metric"] == "accuracy"]
    assert {g["status"] for g in gates} == {"waived"}
    assert gates[0]["waiver_reason"] == "tiny model: accuracy tracked in ISSUE-12"
    assert results(project)["summary"]["waived"] == 2


def test_baseline_regression_fails(project):
    project.makefile(".toml", **{"bias-audit": LENIENT})
    assert run(project).ret == 0
    baseline = results(project)
    # An approved run in which the same model was perfectly accurate, hence unbiased: it always chose the referent.
    for model in baseline["models"]:
        for choices in model["choices"].values():
            for c in choices:
                c["selected"], c["correct"] = baseline["items"][c["item"]]["referent"], True
    (project.path / "approved.json").write_text(json.dumps(baseline))
    result = run(project, "--audit-approved", "approved.json")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*drop of accuracy from the approved run*: fail: shown beyond the limit*"])
    record = results(project)
    statuses = {(g["metric"], g["condition"]): g for g in record["gates"]}
    assert statuses[("accuracy_regression", "intrinsic")]["status"] == "fail"
    # the approved run's debiased effect is exactly 0, so the change is this run's theta^2 (signed), decided
    # on its interval: a random tiny model is not significantly more biased than a perfect one
    theta = record["models"][0]["conditions"]["intrinsic"]["debiased_effect"]
    change = statuses[("a_sb_regression", "intrinsic")]
    assert change["estimate"] == pytest.approx(theta * abs(theta), abs=1e-9)
    assert change["status"] == ("fail" if change["ci"][0] > 0 else "pass")


def test_two_models_side_by_side(project, tmp_path_factory):
    from tiny_models import build_tiny_llama

    other = build_tiny_llama(tmp_path_factory.mktemp("other") / "tiny-2", seed=7)
    project.makefile(".toml", **{"bias-audit": LENIENT})
    result = run(project, "--audit-model", str(other))
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*18 passed*"])
    names = [m["name"] for m in results(project)["models"]]
    assert names == [str(project._tiny), str(other)]


def test_a_selection_without_gates_is_no_verdict_under_plain_pytest(project):
    """Issue 15: `pytest --audit-model M -k zzz` decides no gate: results.json says incomplete and
    pytest exits with its usage-error code, never 0."""
    project.makefile(".toml", **{"bias-audit": LENIENT})
    result = run(project, "-k", "zzz")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["*the audit is incomplete*left out*"])
    data = results(project)
    assert data["verdict"] == "incomplete" and data["complete"] is False and data["coverage"]["tests_deselected"]
