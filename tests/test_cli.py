"""The bias-audit command, run as a user would (a subprocess), on models built here."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from shared_data import winobias_dir
from records import comparable

WINOBIAS = winobias_dir() or Path("/nonexistent")


def bias_audit(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "audit.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=900)


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr + proc.stdout
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("bias-audit: error:"), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    for f in fragments:
        assert f in lines[0]


def test_unknown_model_path_is_one_line_exit_2(tmp_path):
    assert_one_line_error(bias_audit("run", "--model", "/no/such/dir", "--out", tmp_path), "/no/such/dir")


def test_unknown_option_is_exit_2():
    assert_one_line_error(bias_audit("run", "--frobnicate"), "--frobnicate")


def test_run_writes_results_for_a_model_directory(tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    proc = bias_audit("run", "--model", tiny_model_dir, "--out", out)
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    from audit.results import SCHEMA_VERSION

    assert results["schema_version"] == SCHEMA_VERSION
    assert results["verdict"] == ("pass" if proc.returncode == 0 else "fail")
    model = results["models"][0]
    assert set(model["conditions"]) == {"intrinsic", "zero_shot"}
    assert len(model["conditions"]["zero_shot"]["o_sb"]) == 40
    assert "zero_shot" in model["transfer"]
    assert {g["metric"] for g in results["gates"]} == {"a_sb", "rpa_gap", "worst_o_sb", "accuracy", "transfer"}
    # the default preset audits both splits of the embedded benchmark (640 test + 640 dev items)
    assert results["provenance"]["data"]["n_items"] == 1280 and results["provenance"]["data"]["split"] == "all"


@pytest.mark.skipif(not WINOBIAS.is_dir(), reason="official WinoBias files not present")
def test_data_validate_real_files_json():
    proc = bias_audit("data", "validate", WINOBIAS, "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["items"] == 3168 and report["errors"] == []


def test_data_validate_reports_bad_line_with_file_and_line(tmp_path):
    (tmp_path / "pro_stereotyped_type1.txt.dev").write_text(
        "1 [The developer] argued with the designer because [he] did not like the design.\n2 The [pilot] waved.\n"
    )
    proc = bias_audit("data", "validate", tmp_path, "--json")
    assert proc.returncode == 2
    report = json.loads(proc.stdout)
    assert report["items"] == 1
    assert report["errors"][0]["file"] == "pro_stereotyped_type1.txt.dev" and report["errors"][0]["line"] == 2


def test_same_config_and_seed_give_identical_results(tmp_path, tiny_model_dir):
    """Determinism: two uncached runs of the same config and seed write the same results.json."""
    cfg = tmp_path / "audit.toml"
    cfg.write_text("max_items = 120\nn_resamples = 200\nmin_items = 10\n[conditions.intrinsic]\nformat = 'intrinsic'\n"
                   "[conditions.few_shot_k2]\nformat = 'zero_shot'\nshots = 2\nseeds = [0, 1]\n")
    runs = []
    for name in ("a", "b"):
        proc = bias_audit("run", "--model", tiny_model_dir, "--out", tmp_path / name, "--config", cfg, "--no-cache")
        assert proc.returncode in (0, 1), proc.stderr[-2000:]
        runs.append(json.loads((tmp_path / name / "results.json").read_text()))
    assert comparable(runs[0]) == comparable(runs[1])
    assert runs[0]["models"][0]["conditions"]["few_shot_k2"]["seeds"] == [0, 1]


def test_no_secret_reaches_results_or_report(tmp_path, tiny_model_dir):
    import os

    secret = "hf_" + "Q" * 30
    cfg_dir = tmp_path / secret  # the secret reaches the command line, which provenance records
    cfg_dir.mkdir()
    cfg = cfg_dir / "audit.toml"
    cfg.write_text("max_items = 40\nmin_items = 10\nn_resamples = 100\n[conditions.intrinsic]\nformat = 'intrinsic'\n"
                   "preprompt_text = 'key s3cr3t-value-123'\n")
    env = {**os.environ, "HF_TOKEN": secret, "MY_API_KEY": "s3cr3t-value-123"}
    proc = subprocess.run([sys.executable, "-m", "audit.cli", "run", "--model", str(tiny_model_dir), "--out", str(tmp_path / "o"),
                           "--config", str(cfg)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    for name in ("results.json", "report.html"):
        text = (tmp_path / "o" / name).read_text()
        assert secret not in text and "s3cr3t-value-123" not in text
        assert "[REDACTED]" in text
