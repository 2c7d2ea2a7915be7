"""Extension from outside: the example plugin package in tests/plugin_example (a dataset, a backend and a
gate, registered only through entry points) is installed into a temporary directory with pip, and
``bias-audit run`` audits with it, reading the user's own prompt formats from ``--prompt-dir``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.audit_suites import debiasing_config, gate_suite

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "tests" / "plugin_example"

CONFIG = debiasing_config("words:any", bare="words_bare", asked="words_asked") + """
[gates.words_frame_gap]
threshold = 0.1
bound = "point"
rationale = "A word may not change category with the phrasing by more than 10 points on average."

[gates.debiasing_no_increase]
threshold = 0.0
bound = "lower"
rationale = "A debiasing prompt may not make the frame gap significantly worse."
"""
SUITE = gate_suite("accuracy", "words_frame_gap", "debiasing_no_increase", "a_sb")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--no-build-isolation",
                           "--target", str(target), str(PLUGIN)], capture_output=True, text=True, timeout=300,
                          cwd=build, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    if done.returncode != 0:
        pytest.skip(f"pip could not build the example plugin offline: {done.stderr.strip().splitlines()[-1:]}")
    assert list(target.glob("bias_audit_example_plugin-*.dist-info/entry_points.txt"))
    return target


def _audit(installed: Path, tmp_path: Path, model: str) -> tuple[subprocess.CompletedProcess, dict]:
    (tmp_path / "bias-audit.toml").write_text(CONFIG)
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_words.py").write_text(SUITE)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed), str(ROOT)]), "BIAS_AUDIT_NO_CACHE": "1"}
    done = subprocess.run([sys.executable, "-m", "audit.cli", "run", "--model", model, "--tests", str(suite),
                           "--prompt-dir", str(PLUGIN / "prompts"), "--out", str(out), "--no-cache"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    record = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else {}
    return done, record


def _statuses(record: dict) -> dict[tuple[str, str], str]:
    return {(g["metric"], g["condition"]): g["status"] for g in record["gates"]}


def test_a_plugin_package_adds_a_dataset_backend_gate_and_prompt_formats(installed, tmp_path):
    done, record = _audit(installed, tmp_path, "words-rule:hammer,saw,drill")
    assert record, done.stdout[-2000:] + done.stderr[-2000:]
    assert record["dataset"] == "words"
    statuses = _statuses(record)
    # 3 of 12 words are called fruit under frame A only: mean frame gap 0.25 > 0.1 in every condition
    assert statuses[("words_frame_gap", "bare")] == "fail"
    assert statuses[("words_frame_gap", "asked")] == "fail"
    gap = next(g for g in record["gates"] if g["metric"] == "words_frame_gap" and g["condition"] == "asked")
    assert gap["estimate"] == pytest.approx(0.25)
    assert statuses[("accuracy", "asked")] == "pass"
    assert ("a_sb", "asked") not in statuses  # WinoBias's gate does not apply to the plugin's dataset
    # the dataset declares its headline bias: the debiasing gate measures the frame gap's change (none here)
    debias = next(g for g in record["gates"] if g["metric"] == "debiasing_no_increase")
    assert debias["estimate"] == pytest.approx(0.0) and "frame_gap" in debias["message"]
    assert record["verdict"] == "fail" and done.returncode == 1, done.stderr[-2000:]


def test_the_same_plugin_passes_a_model_without_the_planted_effect(installed, tmp_path):
    done, record = _audit(installed, tmp_path, "words-rule:none")
    assert record, done.stdout[-2000:] + done.stderr[-2000:]
    assert _statuses(record)[("words_frame_gap", "asked")] == "pass"


def test_a_plugin_backend_checks_its_spec_with_one_clear_line(installed, tmp_path):
    done, _ = _audit(installed, tmp_path, "words-rule:Bad Words")
    assert done.returncode == 2
    assert "expected comma-separated lower-case words" in done.stderr and "Traceback" not in done.stderr


def test_a_missing_prompt_dir_is_one_clear_config_error(tmp_path):
    from audit import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"config key 'prompt_dirs': '.*nowhere' is not a directory"):
        load_config(None, overrides={"prompt_dirs": [str(tmp_path / "nowhere")]})


def test_a_user_prompt_format_is_listed_and_rendered_before_the_built_in_ones(tmp_path):
    from audit import prompt_formats, render_prompt, set_prompt_dirs

    (tmp_path / "zero_shot.j2").write_text("Mine. {{ split }}{{ item }}")
    (tmp_path / "my_format.j2").write_text("{{ split }}Q: {{ item }}")
    try:
        set_prompt_dirs([tmp_path])
        assert "my_format" in prompt_formats() and "intrinsic" in prompt_formats()
        assert render_prompt("my_format", "x").text == "Q: x"
        assert render_prompt("zero_shot", "x").prefix == "Mine. "  # the user's file shadows the built-in one
    finally:
        set_prompt_dirs([])
    assert "my_format" not in prompt_formats()
