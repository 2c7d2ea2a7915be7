"""Every bad input gets one clear line naming the culprit, exit code 2, and no traceback.

BAD_INPUTS is the table the README's "Bad input" section shows (a test keeps the two in step).
Most cases fail before any model loads and run in-process; the last ones fail mid-run (a broken
model) and run as a subprocess.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from audit.cli import main

ROOT = Path(__file__).resolve().parents[1]
GOOD_LINE = "1 [The developer] argued with the designer because [he] did not like the design.\n"


def data_dir(tmp, lines, name="pro_stereotyped_type1.txt.test"):
    d = tmp / "wb"
    d.mkdir(exist_ok=True)
    (d / name).write_text("".join(lines))
    return d


def model_dir(tmp, tiny, drop=(), extra=None):
    import shutil

    d = tmp / "model"
    shutil.copytree(tiny, d)
    for pattern in drop:
        for f in d.glob(pattern):
            f.unlink()
    if extra:
        extra(d)
    return d


def config(tmp, text):
    p = tmp / "audit.toml"
    p.write_text(text)
    return p


def corrupt_weights(d):
    (d / "model.safetensors").write_bytes(b"\x00" * 64)


def nan_weights(d):
    from safetensors.torch import load_file, save_file

    weights = load_file(d / "model.safetensors")
    weights = {k: torch.full_like(v, float("nan")) if "lm_head" in k or "embed" in k else v for k, v in weights.items()}
    save_file(weights, d / "model.safetensors", metadata={"format": "pt"})


MINIMAL_RESULTS = {"schema_version": "1.0", "verdict": "pass", "models": [], "gates": [], "items": {}, "provenance": {}}


def results_file(tmp, text):
    p = tmp / "results.json"
    p.write_text(text)
    return p


def data_entry(tmp, make):
    d = data_dir(tmp, [GOOD_LINE])
    make(d / "anti_stereotyped_type1.txt.test")
    return d


def suite(tmp, text):
    d = tmp / "suite"
    d.mkdir()
    (d / "test_broken.py").write_text("import pytest\n" + text)
    return d


def cache_is_a_file(tmp, tiny):
    import os

    blocker = tmp / "cache-file"
    blocker.write_text("")
    os.environ["BIAS_AUDIT_CACHE_DIR"] = str(blocker / "sub")  # restored by the test's monkeypatch
    return tiny


def extra_tokens(d):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(d)
    tok.add_tokens([f"zzextra{i}" for i in range(8)])
    tok.save_pretrained(d)


# (input, expected fragment of the message, argv builder(tmp, tiny) -> args)
BAD_INPUTS = [
    ("missing data directory", "/no/such/data: no such directory", lambda t, m: ["run", "--data", "/no/such/data"]),
    ("data path is a file", "not a directory", lambda t, m: ["run", "--data", str(config(t, ""))]),
    ("malformed data line", "pro_stereotyped_type1.txt.test:2:", lambda t, m: ["run", "--data", str(data_dir(t, [GOOD_LINE, "2 The developer argued with the designer.\n"]))]),
    ("empty data set", "no items", lambda t, m: ["run", "--data", str(data_dir(t, []))]),
    ("item with an unknown occupation", "pilot", lambda t, m: ["run", "--data", str(data_dir(t, ["1 [The pilot] argued with the designer because [he] was late.\n"]))]),
    ("unknown model path", "/no/such/model", lambda t, m: ["run", "--model", "/no/such/model"]),
    ("model path is a file", "is a file", lambda t, m: ["run", "--model", str(config(t, ""))]),
    ("model directory without config.json", "no config.json", lambda t, m: ["run", "--model", str(model_dir(t, m, drop=["config.json"]))]),
    ("model directory without a tokenizer", "has no tokenizer", lambda t, m: ["run", "--model", str(model_dir(t, m, drop=["tokenizer*"]))]),
    ("pickle weights without --allow-pickle", "--allow-pickle", lambda t, m: ["run", "--model", str(model_dir(t, m, drop=["*.safetensors"]))]),
    ("invalid TOML", "not valid TOML", lambda t, m: ["run", "--config", str(config(t, "x = "))]),
    ("unknown config key", "unknown config key 'bogus'", lambda t, m: ["run", "--config", str(config(t, "bogus = 1"))]),
    ("negative threshold", "gates.a_sb", lambda t, m: ["run", "--config", str(config(t, "[gates.a_sb]\nthreshold = -0.1"))]),
    ("threshold of the wrong type", "gates.a_sb.threshold", lambda t, m: ["run", "--config", str(config(t, "[gates.a_sb]\nthreshold = 'low'"))]),
    ("gate naming an unknown condition", "unknown condition 'nope'", lambda t, m: ["run", "--config", str(config(t, "[gates.a_sb]\nconditions = ['nope']"))]),
    ("unknown prompt format", "unknown prompt format 'nope'", lambda t, m: ["run", "--config", str(config(t, "[conditions.intrinsic]\nformat = 'intrinsic'\n[conditions.x]\nformat = 'nope'"))]),
    ("unknown pre-prompt", "unknown pre-prompt 'rude'", lambda t, m: ["run", "--config", str(config(t, "[conditions.intrinsic]\nformat = 'intrinsic'\n[conditions.x]\npreprompt = 'rude'"))]),
    ("more shots requested than exist", "64 shots requested but only", lambda t, m: ["run", "--data", str(data_dir(t, [GOOD_LINE], "pro_stereotyped_type1.txt.dev") and data_dir(t, [GOOD_LINE])), "--config", str(config(t, "[conditions.intrinsic]\nformat = 'intrinsic'\n[conditions.k64]\nshots = 64"))]),
    ("few-shot composition that cannot be met", "cannot be met exactly", lambda t, m: ["run", "--config", str(config(t, "[conditions.intrinsic]\nformat = 'intrinsic'\n[conditions.k4]\nshots = 4\npro_share = 0.3"))]),
    ("missing config file", "does not exist", lambda t, m: ["run", "--config", "/no/such.toml"]),
    ("unknown config preset", "unknown config preset 'nope'", lambda t, m: ["run", "--preset", "nope"]),
    ("unknown dtype", "--dtype 'float8'", lambda t, m: ["run", "--dtype", "float8"]),
    ("unavailable device", "--device 'cuda'", lambda t, m: ["run", "--device", "cuda"] if not torch.cuda.is_available() else ["run", "--device", "tpu"]),
    ("output directory not writable", "--out", lambda t, m: ["run", "--out", str(config(t, "") / "sub")]),
    ("missing approved-run file (also under its old name --baseline)", "--approved '/no/such.json': results file not found", lambda t, m: ["run", "--baseline", "/no/such.json"]),
    ("approved run that is not a results.json", "this is not a bias-audit results file", lambda t, m: ["run", "--approved", str(config(t, "{}"))]),
    ("results.json that is not JSON (report)", "not valid JSON", lambda t, m: ["report", str(config(t, "{nope"))]),
    ("unknown command-line option", "--frobnicate", lambda t, m: ["run", "--frobnicate"]),
    # issue 15: every bad input named
    ("negative seed", "config key 'seed'", lambda t, m: ["run", "--config", str(config(t, "seed = -1"))]),
    ("negative condition seed", "seeds.0", lambda t, m: ["run", "--config", str(config(t, "[conditions.intrinsic]\nformat = 'intrinsic'\nseeds = [-1]"))]),
    ("fewer items than min_items", "min_items = 100", lambda t, m: ["run", "--config", str(config(t, "max_items = 2"))]),
    ("NaN in a results.json (report)", "holds NaN", lambda t, m: ["report", str(results_file(t, '{"schema_version": "1.1", "x": NaN}'))]),
    ("Infinity in an approved run", "holds -Infinity", lambda t, m: ["run", "--approved", str(results_file(t, '{"schema_version": "1.0", "x": -Infinity}'))]),
    ("huge integer in a results.json (report)", "integer of 400 digits", lambda t, m: ["report", str(results_file(t, '{"schema_version": "1.1", "n": %s}' % ("9" * 400)))]),
    ("deeply nested results.json (report)", "nested too deeply", lambda t, m: ["report", str(results_file(t, "[" * 100_000 + "]" * 100_000))]),
    ("results.json lacking what the report needs", "o_sb must be numbers by occupation", lambda t, m: ["report", str(results_file(t, json.dumps(dict(MINIMAL_RESULTS, models=[{"name": "m", "conditions": {"c": {"o_sb": 5}}}]))))]),
    ("approved run whose models is not a list of objects", "models[0] needs a 'name'", lambda t, m: ["run", "--approved", str(results_file(t, json.dumps(dict(MINIMAL_RESULTS, models=["m"]))))]),
    ("NUL byte in a data line", "contains a NUL byte", lambda t, m: ["run", "--data", str(data_dir(t, [GOOD_LINE.replace("argued", "arg\x00ued")]))]),
    ("empty data file", "holds no items", lambda t, m: ["run", "--data", str(data_dir(t, [GOOD_LINE]) and data_dir(t, [], "anti_stereotyped_type1.txt.test"))]),
    ("data entry that is a directory", "a directory, not a WinoBias file", lambda t, m: ["run", "--data", str(data_entry(t, lambda p: p.mkdir()))]),
    ("data entry that is a looping symlink", "points nowhere or loops", lambda t, m: ["run", "--data", str(data_entry(t, lambda p: p.symlink_to(p)))]),
    ("over-long model path", "File name too long", lambda t, m: ["run", "--model", "/tmp/" + "m" * 5000]),
    ("over-long data path", "file name too long", lambda t, m: ["run", "--data", "/tmp/" + "d" * 5000]),
    ("--junitxml in a missing folder", "--junitxml", lambda t, m: ["run", "--junitxml", "/no/such/dir/junit.xml"]),
    ("fairness suite with a syntax error", "test_broken.py:2: syntax error", lambda t, m: ["run", "--tests", str(suite(t, "def test_x(:\n    pass\n"))]),
    ("result cache directory that is a file", "cannot be written", lambda t, m: ["run", "--model", str(cache_is_a_file(t, m))]),
]
RUNTIME_BAD_INPUTS = [
    ("corrupt model weights", "cannot load model", lambda t, m: ["run", "--model", str(model_dir(t, m, extra=corrupt_weights)), "--out", str(t / "out")]),
    ("model giving NaN log-probabilities", "invalid log-probability", lambda t, m: ["run", "--model", str(model_dir(t, m, extra=nan_weights)), "--out", str(t / "out")]),
    ("tokenizer vocabulary larger than the embedding", "the embedding matrix only", lambda t, m: ["run", "--model", str(model_dir(t, m, extra=extra_tokens)), "--out", str(t / "out")]),
]


def _assert_one_line(code, err, out, fragment):
    assert code == 2, err + out
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("bias-audit: error:") and fragment in lines[0], lines[0]
    assert "Traceback" not in err + out


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_one_clear_line(case, tmp_path, tiny_model_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BIAS_AUDIT_CACHE_DIR", os.environ["BIAS_AUDIT_CACHE_DIR"])
    _, fragment, argv = case
    try:
        code = main(argv(tmp_path, tiny_model_dir))
    except SystemExit as exc:  # argparse errors exit through SystemExit
        code = exc.code
    captured = capsys.readouterr()
    _assert_one_line(code, captured.err, captured.out, fragment)


@pytest.mark.parametrize("case", RUNTIME_BAD_INPUTS, ids=[c[0] for c in RUNTIME_BAD_INPUTS])
def test_bad_model_mid_run_is_one_clear_line(case, tmp_path, tiny_model_dir):
    _, fragment, argv = case
    cfg = config(tmp_path, "max_items = 40\nmin_items = 10\nn_resamples = 100\n")
    proc = subprocess.run([sys.executable, "-m", "audit.cli", *argv(tmp_path, tiny_model_dir), "--config", str(cfg)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    _assert_one_line(proc.returncode, proc.stderr, "", fragment)


def test_tokenizer_without_pad_token_is_handled(tmp_path):
    from tiny_models import build_tiny_llama

    from audit.backends.hf.loading import load_model
    from audit import Request
    from audit.backends.hf.scorer import Scorer

    d = build_tiny_llama(tmp_path / "nopad", with_pad=False)
    assert json.loads((d / "tokenizer_config.json").read_text()).get("pad_token") is None
    lm = load_model(str(d))
    assert lm.tokenizer.pad_token is not None
    scores = Scorer(lm, batch_size=4).loglikelihood([Request("", "The nurse met the", " cook"), Request("", "A", " nurse")])
    assert all(s < 0 for s in scores)


def test_readme_lists_every_bad_input():
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Bad input"):]
    for name, fragment, _ in BAD_INPUTS + RUNTIME_BAD_INPUTS:
        assert re.search(rf"^\| {re.escape(name)} \|", table, re.M), f"README bad-input table lacks: {name}"
