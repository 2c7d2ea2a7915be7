"""Smoke runs without a config file: the run flags, `list`, `run --json` and shell completion."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from audit.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _cli(args: list[str], cwd: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "audit.cli", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_run_flags_json_and_display_name(tmp_path):
    done = _cli(["run", "--max-items", "300", "--n-resamples", "100", "--seed", "3", "--split", "dev",
                 "--name", "fair=reference-fair", "--out", "out", "--json"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    verdict = json.loads(done.stdout)  # stdout is the JSON alone
    assert verdict["verdict"] == "pass" and verdict["exit_code"] == 0 and verdict["complete"] is True
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [g["id"] for g in verdict["gates"]] == [g["id"] for g in results["gates"]] and verdict["gates"]
    assert {g["model"] for g in verdict["gates"]} == {"fair"}
    assert [m["name"] for m in results["models"]] == ["fair"] and "a_sb[fair-intrinsic]" in [g["id"] for g in verdict["gates"]]
    assert "split dev, seed 3" in done.stderr  # the stage lines (pytest's output is on stderr with --json)


@pytest.mark.parametrize("args, message", [
    (["--max-items", "x"], "--max-items 'x': expected a whole number"),
    (["--split", "train"], "--split 'train': expected dev, test or all"),
    (["--name", "a=b"], "--name 'a=b': 'b' is not a --model of this run"),
    (["--name", "nothing"], "--name 'nothing': expected NAME=MODEL"),
    (["--categories", "Age"], "--categories applies to BBQ data"),
    (["--n-resamples", "5"], "n_resamples"),
])
def test_bad_run_flags_are_one_line_and_exit_2(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and "Traceback" not in "\n".join(err)


def test_list_comes_from_the_registries(capsys):
    from audit.config import preset_names
    from audit import dataset_names
    from audit.gates import GATES

    def names(what: str, *extra: str) -> list[str]:
        assert main(["list", what, "--json", *extra]) == 0
        return [row["name"] for row in json.loads(capsys.readouterr().out)]

    assert names("presets") == preset_names()
    assert names("datasets") == dataset_names()
    assert names("gates") == list(GATES)
    assert {"intrinsic", "zero_shot", "bbq_zero_shot"} <= set(names("formats"))
    assert names("conditions") == ["intrinsic", "zero_shot"]
    assert "few_shot_k8" in names("conditions", "--preset", "study")
    assert main(["list", "gates"]) == 0
    assert "bbq_s_amb" in capsys.readouterr().out


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion_script_completes_commands_and_options(tmp_path, capsys):
    assert main(["completion", "bash"]) == 0
    script = tmp_path / "complete.bash"
    script.write_text(capsys.readouterr().out)

    def complete(*words: str) -> set[str]:
        line = " ".join(["bias-audit", *words])
        probe = (f'source {script}; COMP_WORDS=({line}); COMP_CWORD={len(words)}; _bias_audit; '
                 'printf "%s\\n" "${COMPREPLY[@]}"')
        done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return set(done.stdout.split())

    assert {"run", "report", "list", "completion"} <= complete("")
    assert {"--max-items", "--model"} <= complete("run", "--m")
    assert complete("list", "ga") == {"gates"}
    assert complete("data", "va") == {"validate"}


def test_skip_reasons_say_a_gate_does_not_apply():
    from types import SimpleNamespace

    from audit import load_config
    from audit.plugin import _not_applicable

    winobias = SimpleNamespace(dataset=SimpleNamespace(name="winobias"), config=load_config(None, preset="default"))
    assert _not_applicable(winobias, "bbq_s_amb") == "gate 'bbq_s_amb' does not apply to winobias (a bbq gate)"
    assert _not_applicable(winobias, "debiasing_no_increase") == \
        "gate 'debiasing_no_increase' applies to debiasing strategies; this run has none"
    assert _not_applicable(winobias, "a_sb") is None
    bbq = SimpleNamespace(dataset=SimpleNamespace(name="bbq"), config=load_config(None, preset="bbq"))
    assert "does not apply to bbq" in _not_applicable(bbq, "a_sb")


def test_no_occupation_heatmap_without_occupations():
    import warnings

    from audit.datasets.winobias.report_view import osb_heatmaps

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert osb_heatmaps("osb", "m", [], None, [("zero_shot", {})]) == []
