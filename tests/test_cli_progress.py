"""The first minute of a run on a terminal: a line at once, no silent stage, lines that fit the width."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from audit.run import progress
from terminal import run_in_pty

ROOT = Path(__file__).resolve().parents[1]
FIRST_LINE_S = 2.0
MAX_SILENCE_S = 10.0


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a POSIX pseudo-terminal")
def test_first_line_at_once_and_no_stage_silent(tiny_model_dir, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "bias-audit.toml").write_text("max_items = 24\nn_resamples = 100\nmin_items = 10\nbatch_size = 4\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BIAS_AUDIT_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "COLUMNS"):
        env.pop(name, None)
    code, lines = run_in_pty([sys.executable, "-m", "audit.cli", "run", "--model", str(tiny_model_dir),
                               "--out", str(tmp_path / "out")], project, env, columns=80)
    text = "\n".join(line for _, line in lines)
    assert code in (0, 1), text[-3000:]
    assert lines[0][0] < FIRST_LINE_S, lines[:3]
    gaps = [(b[0] - a[0], a[1], b[1]) for a, b in zip(lines, lines[1:])]
    assert max(gaps)[0] < MAX_SILENCE_S, max(gaps)
    for stage in ("checking the config", "loading data", "loading model", "scoring ", "resampling "):
        assert stage in text, stage
    live = [line for _, line in lines if "ETA" in line]
    assert live and all(len(line) <= 80 and "elapsed" in line for line in live), live[:3]


def test_progress_line_keeps_counts_eta_and_elapsed_when_narrow():
    task = progress.Task("a-very-long-model-name/checkpoint-final", "few_shot_anti_stereotypical", total=1280)
    task.engine, task.tokens, task.cached_requests = 400, 9000, 12
    wide = task.line(200)
    assert "tok/s" in wide and "(12 cached)" in wide and wide.startswith("a-very-long-model-name")
    for width in (80, 60, 44):
        line = task.line(width)
        assert len(line) <= width, (width, line)
        assert "412/1,280 requests" in line and "elapsed " in line and "ETA " in line, (width, line)
    task.finished = task.started + 19
    final = task.line(60)
    assert len(final) <= 60 and "1,280 requests" in final and "in 0:00:19" in final


def test_activity_says_it_is_still_going(monkeypatch):
    shown = []
    monkeypatch.setattr(progress, "HEARTBEAT_S", 0.05)
    previous = progress.set_stage_sink(shown.append)
    try:
        with progress.activity("building the reference models"):
            time.sleep(0.3)
    finally:
        progress.set_stage_sink(previous)
    assert shown[0] == "building the reference models"
    assert len(shown) >= 3 and all(s.startswith("still building the reference models (") for s in shown[1:])
