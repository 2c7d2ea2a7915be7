"""One meaning per exit code, and a verdict only from a complete audit (issue 15): `bias-audit run`
as a user (or an adversary) runs it, in a subprocess, on the tiny model. Each exit code has a test
that produces it; the bypasses (a suite without the audit's gates, a selection that excludes every
gate, collect-only) fail with one clear line and an "incomplete" results.json."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QUICK = "max_items = 40\nmin_items = 10\nn_resamples = 100\n[conditions.intrinsic]\nformat = 'intrinsic'\n"
LENIENT_BIAS = QUICK + "".join(f"[gates.{g}]\nthreshold = 1.0\n" for g in ("a_sb", "rpa_gap", "worst_o_sb"))
LENIENT = LENIENT_BIAS + "[gates.accuracy]\nthreshold = 0.0\n"
STRICT = QUICK + "[gates.accuracy]\nthreshold = 0.99\n"


def bias_audit(tmp, *args, env=None, **kw):
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    full_env.pop("GITHUB_STEP_SUMMARY", None) if "GITHUB_STEP_SUMMARY" not in (env or {}) else None
    return subprocess.run([sys.executable, "-m", "audit.cli", "run", *map(str, args)], capture_output=True, text=True,
                          cwd=tmp, env=full_env, timeout=900, **kw)


def config(tmp, text):
    path = tmp / "audit.toml"
    path.write_text(text)
    return path


def stderr_lines(proc):
    return [line for line in proc.stderr.splitlines() if line.strip() and "Warning" not in line]


def results(path):
    return json.loads(Path(path).read_text())


def suite(tmp, name, text):
    d = tmp / name
    d.mkdir()
    (d / "test_suite.py").write_text(text)
    return d


def test_a_suite_without_the_audits_gates_cannot_pass(tmp_path, tiny_model_dir):
    """The bypass: ./fairness_tests holding only `def test_ok(): pass` used to exit 0."""
    (tmp_path / "fairness_tests").mkdir()
    (tmp_path / "fairness_tests" / "test_ok.py").write_text("def test_ok():\n    pass\n")
    proc = bias_audit(tmp_path, "--model", tiny_model_dir, "--config", config(tmp_path, QUICK), "--out", "out")
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr
    (line,) = stderr_lines(proc)
    assert line.startswith("bias-audit: error: the audit is incomplete") and "no test for gate(s) a_sb, rpa_gap" in line
    record = results(tmp_path / "out" / "results.json")
    assert record["verdict"] == "incomplete" and record["complete"] is False
    assert record["coverage"]["gates_missing"] == ["a_sb", "rpa_gap", "worst_o_sb", "accuracy"]
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("selection, reason", [(["-k", "zzz"], "left out"), (["--co"], "only collected")])
def test_a_selection_that_runs_no_gate_cannot_pass(tmp_path, tiny_model_dir, selection, reason):
    proc = bias_audit(tmp_path, "--model", tiny_model_dir, "--config", config(tmp_path, QUICK), "--out", "out", "--", *selection)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr
    (line,) = stderr_lines(proc)
    assert "the audit is incomplete" in line and reason in line and "no audit gate was decided" in line
    record = results(tmp_path / "out" / "results.json")
    assert record["verdict"] == "incomplete"
    if selection[0] == "-k":
        assert set(record["coverage"]["tests_deselected"]) == {"a_sb", "rpa_gap", "worst_o_sb", "accuracy",
                                                               "transfer", "a_sb_regression", "accuracy_regression",
                                                               "bbq_s_amb", "bbq_s_dis", "bbq_accuracy_disambig",
                                                               "crows_pairs_bias", "debiasing_no_increase"}


def test_exit_0_custom_suite_replacing_gates_and_one_token_redacted_everywhere(tmp_path, tiny_model_dir):
    """Exit 0 needs every required gate decided or explicitly replaced. The same run carries a
    token-shaped string (in the model's path) through every output: console, JUnit XML, step
    summary, report, results.json."""
    import shutil

    token = "hf_" + "Tok3nShaped" * 3
    model = tmp_path / f"models-{token}" / "tiny"
    shutil.copytree(tiny_model_dir, model)
    custom = suite(tmp_path, "custom", (
        "import pytest\n\n"
        "@pytest.mark.audit_gate('a_sb')\n"
        "def test_a_sb(audit_outcome):\n    assert audit_outcome.passed, audit_outcome.message\n\n"
        "@pytest.mark.audit_replaces('rpa_gap', reason='ours')\n"
        "@pytest.mark.audit_replaces('worst_o_sb', reason='ours')\n"
        "def test_ours(audit_session):\n    assert audit_session.items\n"
    ))
    cfg = config(tmp_path, LENIENT_BIAS + "[gates.accuracy]\nenabled = false\n")
    summary = tmp_path / "summary.md"
    proc = bias_audit(tmp_path, "--model", model, "--config", cfg, "--out", "out", "--tests", custom,
                      "--junitxml", tmp_path / "junit.xml", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    record = results(tmp_path / "out" / "results.json")
    assert record["verdict"] == "pass" and record["complete"] is True
    assert set(record["coverage"]["gates_replaced"]) == {"rpa_gap", "worst_o_sb"}
    assert record["coverage"]["gates_replaced"]["rpa_gap"][0]["outcome"] == "passed"
    outputs = {"stdout": proc.stdout, "stderr": proc.stderr, "junit": (tmp_path / "junit.xml").read_text(),
               "summary": summary.read_text(), "report": (tmp_path / "out" / "report.html").read_text(),
               "results": (tmp_path / "out" / "results.json").read_text()}
    for name, text in outputs.items():
        assert token not in text, f"the token leaked into {name}"
    for name in ("stdout", "junit", "report", "results"):
        assert "[REDACTED]" in outputs[name], name
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")] == []  # no temp files


def unwritable_summary(tmp):
    """A step-summary path whose folder cannot exist (a file stands where the folder would be)."""
    (tmp / "not-a-folder").write_text("")
    return str(tmp / "not-a-folder" / "summary.md")


def test_exit_1_a_gate_failed_even_when_the_step_summary_cannot_be_written(tmp_path, tiny_model_dir):
    proc = bias_audit(tmp_path, "--model", tiny_model_dir, "--config", config(tmp_path, STRICT), "--out", "out",
                      env={"GITHUB_STEP_SUMMARY": unwritable_summary(tmp_path)})
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr
    (line,) = stderr_lines(proc)
    assert line.startswith("bias-audit: output error: GITHUB_STEP_SUMMARY '") and "could not be written" in line
    assert results(tmp_path / "out" / "results.json")["verdict"] == "fail"
    assert "Traceback" not in proc.stderr


def test_exit_4_a_passing_audit_whose_step_summary_cannot_be_written(tmp_path, tiny_model_dir):
    """An environment failure is never a gate result: the verdict (pass) is written, the summary
    failure is one line, and the code is 4, not 1."""
    proc = bias_audit(tmp_path, "--model", tiny_model_dir, "--config", config(tmp_path, LENIENT), "--out", "out",
                      env={"GITHUB_STEP_SUMMARY": unwritable_summary(tmp_path)})
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr
    (line,) = stderr_lines(proc)
    assert line.startswith("bias-audit: output error: GITHUB_STEP_SUMMARY")
    assert results(tmp_path / "out" / "results.json")["verdict"] == "pass"


def test_exit_3_a_crash_in_a_test_is_a_bug(tmp_path, tiny_model_dir):
    crashing = suite(tmp_path, "crash", "import pytest\n\n@pytest.mark.audit_gate('a_sb')\n"
                                        "def test_a_sb(audit_outcome):\n    raise RuntimeError('boom')\n")
    proc = bias_audit(tmp_path, "--model", tiny_model_dir, "--config", config(tmp_path, QUICK), "--out", "out",
                      "--tests", crashing)
    assert proc.returncode == 3, proc.stdout[-2000:] + proc.stderr
    assert stderr_lines(proc)[-1].startswith("bias-audit: internal error:")


def test_exit_130_sigint_writes_incomplete_results_and_keeps_the_cache(tmp_path, tiny_model_dir):
    commits = tmp_path / "commits.log"
    env = {"BIAS_AUDIT_CACHE_DIR": str(tmp_path / "cache"), "BIAS_AUDIT_COMMIT_LOG": str(commits),
           "BIAS_AUDIT_CACHE_COMMIT_S": "0.5", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "audit.cli", "run", "--model", str(tiny_model_dir), "--out", "out", "--preset", "study",
           "--config", str(config(tmp_path, "min_items = 10\nn_resamples = 100\nsplit = 'test'\n"))]
    # SIGINT at its default in the child: a suite started in the background by a non-interactive shell (`cmd &`)
    # ignores SIGINT, the child inherits that, and Python then installs no Ctrl-C handler at all
    proc = subprocess.Popen(cmd, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT), **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 600
    while not (commits.exists() and commits.read_text().count("\n") >= 2) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, out[-2000:] + err
    lines = [line for line in err.splitlines() if line.strip() and "Warning" not in line]
    assert len(lines) == 1 and lines[0].startswith("bias-audit: interrupted: partial results in") and "kept" in lines[0]
    record = results(tmp_path / "out" / "results.json")
    assert record["verdict"] in ("incomplete", "fail") and record["complete"] is False
    assert record["coverage"]["interrupted"] is True
    committed = sum(int(line.split("\t")[1]) for line in commits.read_text().splitlines())
    from audit.backends.cached import ResultCache

    with ResultCache(tmp_path / "cache" / "results.sqlite") as cache:
        # every committed score is still there; the signal may land between a chunk's commit and its
        # log line, so the cache may hold one chunk (256 likelihoods) more than the log counts
        assert committed > 0 and committed <= len(cache) <= committed + 256
