"""Issue 23, class 5: a tampered or inconsistent results.json is refused, not believed, by
`bias-audit report` and by `--approved` (exit 2, one line naming the file); fuzzed with hypothesis."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from audit.cli import main

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = json.loads((ROOT / "tests" / "fixtures" / "results_example.json").read_text())


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "audit.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})


def _one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and len(lines[0]) <= 500 and "Traceback" not in stderr, stderr[-1000:]
    return lines[0]


def test_an_edited_verdict_is_refused_and_no_report_is_written(tmp_path):
    tampered = copy.deepcopy(FIXTURE)
    tampered["verdict"] = "pass"
    (tmp_path / "results.json").write_text(json.dumps(tampered))
    proc = _cli("report", "results.json", cwd=tmp_path)
    assert proc.returncode == 2
    line = _one_error_line(proc.stderr)
    assert "results.json: verdict 'pass' contradicts its own gates" in line and "imply 'fail'" in line
    assert not (tmp_path / "report.html").exists()


def _replaced(record: dict, path: tuple, value) -> dict:
    """A deep copy of ``record`` with the value at ``path`` (keys and list indices) replaced by ``value``."""
    bad = copy.deepcopy(record)
    node = bad
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return bad


@pytest.mark.parametrize("path, value, field", [
    (("models", 0, "choices", "zero_shot", 0, "scores"), ["-0.5", "x"], "scores must be an array of numbers"),
    (("models", 0, "choices", "zero_shot", 0, "correct"), "yes", "correct must be true, false or null"),
    (("models", 0, "conditions", "zero_shot", "n_items"), "300", "n_items must be a count"),
    (("gates", 0, "estimate"), "0.3", "gates[0].estimate must be a number or null"),
    (("gates", 0, "ci"), [0.1], "gates[0].ci must be null or [lower, upper]"),
])
def test_approved_runs_with_wrong_types_are_refused(tmp_path, path, value, field):
    bad = _replaced(FIXTURE, path, value)
    (tmp_path / "approved.json").write_text(json.dumps(bad))
    (tmp_path / "results.json").write_text(json.dumps(FIXTURE))
    proc = _cli("report", "results.json", "--approved", "approved.json", cwd=tmp_path)
    assert proc.returncode == 2 and field in _one_error_line(proc.stderr)
    if path[-1] == "scores":  # `run --approved` reads through the same check, before any model loads
        proc = _cli("run", "--model", "reference-fair", "--approved", "approved.json", "--out", "out", cwd=tmp_path)
        assert proc.returncode == 2 and "--approved 'approved.json'" in _one_error_line(proc.stderr)
        assert not (tmp_path / "out" / "results.json").exists()


def _leaves(value, path=()):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(value, list) and value:
        for i, v in enumerate(value[:3]):
            yield from _leaves(v, path + (i,))
    else:
        yield path


LEAVES = [p for p in _leaves(FIXTURE) if p and p[0] in ("verdict", "gates", "models", "complete")]
JUNK = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False), st.text(max_size=30),
                 st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(LEAVES), value=JUNK)
def test_fuzzed_records_never_crash_and_errors_are_one_line(tmp_path, capsys, path, value):
    bad = _replaced(FIXTURE, path, value)
    (tmp_path / "fuzz.json").write_text(json.dumps(bad))
    code = main(["report", str(tmp_path / "fuzz.json"), "--out", str(tmp_path / "fuzz.html")])
    err = capsys.readouterr().err
    assert code in (0, 2, 4), err[-2000:]
    if code == 2:
        _one_error_line(err)
    if path == ("verdict",) and value != FIXTURE["verdict"]:
        assert code == 2  # a verdict the gates do not imply is never rendered
