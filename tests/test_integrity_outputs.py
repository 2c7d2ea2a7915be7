"""Atomic outputs (issue 15): a failed write leaves the previous file or none, never a temporary file,
and is one line naming the file; when results.json cannot be written nothing stale looks current."""

import errno
import json
import os

import pytest

from audit.results import atomic
from audit.results.atomic import OutputError, check_writable_file, write_atomic
from audit.run.setup import write_outputs
from audit.run.verdict import EXIT_OUTPUT, EXIT_PASS, RunState, decide


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_atomic_write_replaces_whole_and_keeps_the_mode_readable(tmp_path):
    target = tmp_path / "results.json"
    write_atomic(target, '{"v": 1}')
    write_atomic(target, '{"v": 2}')
    assert json.loads(target.read_text()) == {"v": 2}
    assert os.stat(target).st_mode & 0o444 == 0o444 & ~_umask()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("where", ["fsync", "replace", "write"])
def test_failed_write_keeps_the_previous_file_and_leaves_no_temp(tmp_path, monkeypatch, where):
    target = tmp_path / "report.html"
    target.write_text("previous")
    if where == "write":
        monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode: _FullFile(fd))
    else:
        monkeypatch.setattr(atomic.os, where, _disk_full)
    with pytest.raises(OutputError) as err:
        write_atomic(target, "<html>new</html>", what="report")
    monkeypatch.undo()
    assert str(err.value) == f"report '{target}' could not be written (No space left on device)"
    assert target.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]  # no temporary file left behind


class _FullFile:
    """A file whose write fails as on a full disk (and closes its descriptor)."""

    def __init__(self, fd):
        self.fd = fd

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        os.close(self.fd)

    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")


def test_secret_is_redacted_on_write(tmp_path):
    token = "hf_" + "Z" * 30
    write_atomic(tmp_path / "x.txt", f"model {token}")
    assert (tmp_path / "x.txt").read_text() == "model [REDACTED]"


def test_results_write_failure_removes_stale_outputs_and_is_an_output_error(tmp_path, monkeypatch):
    """The verdict is decided; its record cannot be written: the previous run's results.json and
    report.html go (they would look current), the problem is one line, and the exit code is 4
    for a passing audit, 1 for a failing one (never the gate result's code for a passing one)."""
    (tmp_path / "results.json").write_text('{"verdict": "fail"}')
    (tmp_path / "report.html").write_text("old report")
    monkeypatch.setattr(atomic.os, "replace", _disk_full)
    state = RunState(verdict="pass", assessment={"complete": True, "reasons": []})
    write_outputs({"schema_version": "1.1", "verdict": "pass"}, tmp_path, state)
    assert not (tmp_path / "results.json").exists() and not (tmp_path / "report.html").exists()
    assert list(tmp_path.iterdir()) == []
    assert state.output_problems == [
        f"results '{tmp_path / 'results.json'}' could not be written (No space left on device); the verdict (pass) is not recorded"
    ]
    code, lines = decide(state)
    assert code == EXIT_OUTPUT and len(lines) == 1 and lines[0].startswith("bias-audit: output error: results '")
    state.verdict = "fail"
    assert decide(state)[0] == 1


def test_step_summary_in_a_missing_folder_does_not_change_a_pass_into_a_gate_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "missing" / "summary.md"))
    monkeypatch.setattr("audit.report.write_report", lambda results, out, approved=None: write_atomic(out, "<html></html>"))
    monkeypatch.setattr("audit.report.tables.step_summary", lambda results, report: "## ok\n")
    (tmp_path / "missing").mkdir()
    (tmp_path / "missing").rmdir()
    blocker = tmp_path / "missing"
    blocker.write_text("")  # a file where the folder should be: the append cannot create summary.md
    state = RunState(verdict="pass", assessment={"complete": True, "reasons": []})
    write_outputs({"schema_version": "1.1", "verdict": "pass"}, tmp_path / "out", state)
    assert json.loads((tmp_path / "out" / "results.json").read_text())["verdict"] == "pass"
    assert len(state.output_problems) == 1 and state.output_problems[0].startswith("GITHUB_STEP_SUMMARY '")
    assert decide(state)[0] == EXIT_OUTPUT
    state.output_problems.clear()
    assert decide(state)[0] == EXIT_PASS


def test_writability_check_names_the_problem(tmp_path):
    assert check_writable_file(tmp_path / "j.xml", "--junitxml") is None
    assert "does not exist" in check_writable_file(tmp_path / "no" / "j.xml", "--junitxml")
    assert "is a directory" in check_writable_file(tmp_path, "--junitxml")
    assert "file name too long" in check_writable_file(tmp_path / ("x" * 300), "--junitxml")
