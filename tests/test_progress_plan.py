"""Progress on the terminal (under a pseudo-terminal, through pytest's capture) and ``bias-audit plan``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from audit.run import progress
from terminal import run_in_pty

ROOT = Path(__file__).resolve().parents[1]

# The embedded default preset (generated data, intrinsic + zero-shot), on a small subsample.
SMALL_DEFAULT = """\
preset = "default"
max_items = {max_items}
n_resamples = 100
min_items = 10
batch_size = 4
"""

LIVE = re.compile(r"(\S+) · (\w+)  (\d+)/(\d+) requests \((\d+) cached\)  (?:[\d,]+|-) tok/s  elapsed \d+:\d\d:\d\d  ETA (?:\d+:\d\d:\d\d|\?)")
FINAL = re.compile(r"(\S+) · (\w+)  ([\d,]+) requests \(([\d,]+) cached\)  in \d+:\d\d:\d\d  (?:[\d,]+|-) tok/s")


def _env(cache: Path, **extra) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BIAS_AUDIT_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1",
           "COLUMNS": "160", **extra}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        env.pop(name, None)
    return env


def _project(tmp_path: Path, max_items: int = 24) -> Path:
    project = tmp_path / "project"
    project.mkdir(parents=True, exist_ok=True)
    (project / "bias-audit.toml").write_text(SMALL_DEFAULT.format(max_items=max_items), encoding="utf-8")
    return project


def _run_in_pty(args: list[str], cwd: Path, env: dict, timeout: float = 600) -> tuple[int, str]:
    code, lines = run_in_pty(args, cwd, env, timeout=timeout)
    return code, "\n".join(line for _, line in lines)


def _lines(output: str) -> list[str]:
    return [part.strip() for part in output.splitlines()]


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a POSIX pseudo-terminal")
def test_cli_and_plain_pytest_show_progress_on_a_terminal(tiny_model_dir, tmp_path):
    project, cache = _project(tmp_path), tmp_path / "cache"
    code, output = _run_in_pty([sys.executable, "-m", "audit.cli", "run", "--model", str(tiny_model_dir),
                                "--out", str(tmp_path / "out")], project, _env(cache))
    assert code in (0, 1), output[-3000:]
    lines = _lines(output)
    live = [m for m in map(LIVE.search, lines) if m]
    final = {m.group(2): m for m in map(FINAL.search, lines) if m}
    assert {m.group(2) for m in live} == {"intrinsic", "zero_shot"}, output[-3000:]  # batch_size 4: several updates
    assert all(int(m.group(3)) <= int(m.group(4)) == 48 for m in live)  # 24 items x 2 candidates
    assert set(final) == {"intrinsic", "zero_shot"}
    assert all(m.group(3) == "48" and m.group(4) == "0" for m in final.values())
    assert "results: " in output

    # Plain pytest with the plugin, same cache: the progress says the cache answered everything.
    code, output = _run_in_pty([sys.executable, "-m", "pytest", str(ROOT / "fairness_tests"), "-p", "no:cacheprovider",
                                "--audit-model", str(tiny_model_dir), "--audit-out", str(tmp_path / "out2")],
                               project, _env(cache))
    assert code in (0, 1), output[-3000:]
    final = {m.group(2): m for m in map(FINAL.search, _lines(output)) if m}
    assert set(final) == {"intrinsic", "zero_shot"}, output[-3000:]
    assert all(m.group(3) == "48" and m.group(4) == "48" for m in final.values())


def test_task_counts_cached_settled_and_scaled_engine_reports():
    shown = []

    class Recorder:
        def show(self, text, final):
            shown.append((text, final))

    progress.set_display(Recorder())
    try:
        with progress.task("m", "c", total=100) as t:
            progress.cached(20)
            with progress.scaled(2.0):
                progress.advance(10, tokens=50)  # rank 0 of two: its 10 stand for 20
            assert (t.cached_requests, t.scored, t.done, t.tokens) == (20, 20, 40, 100)
            progress.settle(30)  # the cache layer's exact count wins when larger
            assert t.scored == 30 and t.done == 50
            assert t.eta_s() is not None
        assert shown[-1][1] is True and "100 requests (20 cached)  in" in shown[-1][0]
        assert shown[0] == ("scoring m · c: 100 requests (tokenising, then the model)", True)  # the stage line
        assert shown[1][1] is False
    finally:
        progress.set_display(None)
    progress.advance(5)  # no task: ignored


def _plan(project: Path, cache: Path, model: Path) -> dict:
    done = subprocess.run([sys.executable, "-m", "audit.cli", "plan", "--model", str(model), "--json"], cwd=project,
                          env=_env(cache), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_plan_counts_what_a_run_then_scores_and_estimates_from_it(tiny_model_dir, tmp_path):
    project, cache = _project(tmp_path), tmp_path / "cache"
    before = _plan(project, cache, tiny_model_dir)
    conditions = {c["condition"]: c for c in before["conditions"]}
    assert set(conditions) == {"intrinsic", "zero_shot"}
    # Measured now by running each condition on a sample of its own items through the run's code, before any run
    # (this 24-item project fits in one engine batch, so the whole condition is timed).
    assert all(c["requests"] == 48 and c["cached"] == 0 and c["estimate_s"] > 0 for c in conditions.values())
    assert all(re.match(r"measured now: (all 24 items|\d+ items) in ", c["basis"]) for c in conditions.values()), \
        [c["basis"] for c in conditions.values()]
    assert all(c["prompt_tokens"] > c["requests"] for c in conditions.values())
    assert conditions["zero_shot"]["prompt_tokens"] > conditions["intrinsic"]["prompt_tokens"]  # the instruction

    log = tmp_path / "score.log"
    run = subprocess.run([sys.executable, "-m", "audit.cli", "run", "--model", str(tiny_model_dir), "--out",
                          str(tmp_path / "out")], cwd=project, env=_env(cache, BIAS_AUDIT_SCORE_LOG=str(log)),
                         capture_output=True, text=True, timeout=600)
    assert run.returncode in (0, 1), run.stderr[-2000:]
    logged = run.stdout + run.stderr  # no terminal: no redrawn progress, but a kept line per stage
    assert "ETA" not in logged and "\r" not in logged and "scoring " in logged and "loading data" in logged
    scored = sum(int(line.split("\t")[1]) for line in log.read_text().splitlines())
    distinct = sum(2 * len(set(json.dumps(ch["item"]) for ch in choices))
                   for m in json.loads((tmp_path / "out" / "results.json").read_text())["models"]
                   for choices in m["choices"].values())
    assert scored == before["total"]["requests"] == distinct

    after = {c["condition"]: c for c in _plan(project, cache, tiny_model_dir)["conditions"]}
    assert all(c["cached"] == c["requests"] == 48 and c["estimate_s"] == 0 for c in after.values())

    # More items: the new ones are misses, estimated from the rate measured on this model.
    bigger = _project(tmp_path / "bigger", max_items=40)
    grown = {c["condition"]: c for c in _plan(bigger, cache, tiny_model_dir)["conditions"]}
    for c in grown.values():
        assert c["requests"] == 80 and c["cached"] < 80
        assert c["estimate_s"] > 0 and c["basis"].startswith("measured now:")
