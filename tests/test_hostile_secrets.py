"""Issue 23, class 1: what the user gave as a secret (URL user:password, ?api_key=, the variable named by
api_key_env) never appears in any output, even when a hostile server echoes it back; an innocent variable
whose name contains TOKEN (MODEL_TOKENIZER) redacts nothing. A real CLI run against a real local server."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from fake_servers import VLLMShaped, serve

from audit.results.redaction import is_secret_name, public_spec, private_spec, redact

ROOT = Path(__file__).resolve().parents[1]
PASSWORD, QUERY_KEY, ENV_KEY = "pw-Zq81xVv", "qk-Hh55rTn2", "ek-LLM4uth77"


def test_secret_names_are_whole_parts_and_specs_lose_their_credentials():
    assert is_secret_name("HF_TOKEN") and is_secret_name("OPENAI_API_KEY") and is_secret_name("LLM_AUTH")
    assert not is_secret_name("MODEL_TOKENIZER") and not is_secret_name("KEYBOARD") and not is_secret_name("PASSAGE_DIR")
    spec = f"openai-completions:http://alice:{PASSWORD}@127.0.0.1:9/v1?api_key={QUERY_KEY}&mode=fast"
    clean = public_spec(spec)
    assert clean == "openai-completions:http://127.0.0.1:9/v1?mode=fast" and private_spec(clean) == spec
    assert redact(f"echoed {PASSWORD} and {QUERY_KEY}") == "echoed [REDACTED] and [REDACTED]"
    assert redact("see https://bob:hunter2@h.example/x?token=abc&b=1") == "see https://[REDACTED]@h.example/x?token=[REDACTED]&b=1"


class EchoingServer(VLLMShaped):
    """A hostile server: it checks that the credentials arrived, then echoes everything it received
    (Authorization header, query string) in /models metadata and in error messages."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.seen = []

    def __call__(self, method, path, body, headers):
        auth = headers.get("Authorization", "")
        self.seen.append((path, auth))
        if path.split("?")[0].endswith("/models"):
            return 200, {"object": "list", "data": [{"id": "tiny", "owned_by": f"{auth} {path}"}]}
        status, payload = super().__call__(method, path.split("?")[0], body, headers)
        if status == 200:
            payload["system_fingerprint"] = f"{auth} {path}"
        return status, payload


def test_a_run_with_secrets_writes_none_of_them_anywhere(tmp_path, tiny_model_dir):
    from audit.backends.hf.loading import load_model

    tiny = load_model(str(tiny_model_dir), device="cpu", dtype="float32")
    (tmp_path / "bias-audit.toml").write_text('preset = "default"\nmin_items = 10\nmax_items = 12\nn_resamples = 100\n')
    summary = tmp_path / "summary.md"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LLM_AUTH": ENV_KEY, "MODEL_TOKENIZER": str(tiny_model_dir),
           "GITHUB_STEP_SUMMARY": str(summary), "BIAS_AUDIT_CACHE_DIR": str(tmp_path / "cache")}
    server = EchoingServer(tiny.model, tiny.tokenizer)
    with serve(server) as url:
        host = url.split("//", 1)[1]
        spec = f"openai-completions:http://alice:{PASSWORD}@{host}?api_key={QUERY_KEY}"
        proc = subprocess.run(
            [sys.executable, "-m", "audit.cli", "run", "--model", spec, "--out", str(tmp_path / "out"),
             "--junitxml", str(tmp_path / "junit.xml"), "--backend-option", f"tokenizer={tiny_model_dir}",
             "--backend-option", "api_key_env=LLM_AUTH", "--backend-option", "concurrency=2"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    assert any(auth == f"Bearer {ENV_KEY}" for _, auth in server.seen)  # the key travelled in the header
    assert any(QUERY_KEY in path for path, _ in server.seen)  # the query parameter travelled too
    outputs = {"stdout": proc.stdout, "stderr": proc.stderr}
    for path in [*(tmp_path / "out").rglob("*"), tmp_path / "junit.xml", summary]:
        if path.is_file():
            outputs[str(path)] = path.read_text(errors="replace")
    for db in (tmp_path / "cache").rglob("*.sqlite"):
        with sqlite3.connect(db) as con:
            tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
            outputs[str(db)] = json.dumps([list(map(str, row)) for t in tables for row in con.execute(f"select * from {t}")])
    assert len(outputs) >= 6, sorted(outputs)
    for where, text in outputs.items():
        for secret in (PASSWORD, QUERY_KEY, ENV_KEY, "alice:"):
            assert secret not in text, f"{secret} leaked into {where}"
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["models"][0]["name"] == f"openai-completions:http://{host}"  # named, not [REDACTED]
    assert "tiny-llama" in outputs[str(tmp_path / "out" / "results.json")]  # MODEL_TOKENIZER's value is not a secret
    run_id = results["run_id"]  # every output of the run names it (class 6)
    assert len(run_id) == 16
    for name in (str(tmp_path / "out" / "report.html"), str(tmp_path / "junit.xml"), str(summary)):
        assert run_id in outputs[name], name
