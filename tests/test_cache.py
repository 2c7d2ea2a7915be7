"""The result cache (issue 8): hits and misses, keys, committed chunks, corrupt files, the CLI, and a
run killed with SIGKILL that resumes to the same results.json as an uninterrupted run."""

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from records import comparable
from audit import Backend, Request
from audit.backends.cached import CachedBackend, ResultCache, request_key
from audit.backends.hf.backend import model_cache_key
from audit.backends.hf.loading import LoadedModel
from audit import AuditError


class FakeTokenizer:
    name_or_path = ""
    special_tokens_map = {"eos_token": "</s>"}
    padding_side = "right"
    chat_template = None

    def __init__(self, vocab=None):
        self.vocab = vocab or {"a": 0, "b": 1}

    def get_vocab(self):
        return dict(self.vocab)


def fake_model(**identity) -> LoadedModel:
    ident = {"model": "fake", "source": "local", "revision": None, "weights_sha256": "abc123", "dtype": "float32",
             "architecture": "Fake", "tokenizer": "FakeTokenizer"}
    ident.update(identity)
    return LoadedModel(name="fake", model=None, tokenizer=FakeTokenizer(), device=torch.device("cpu"), identity=ident)


class FakeScorer(Backend):
    """A backend that scores a request as minus the length of context + continuation; records every call."""

    def __init__(self, lm=None, fail_on_call: int | None = None):
        self.lm = lm or fake_model()
        self.name = "fake"
        self.calls: list[int] = []
        self.fail_on_call = fail_on_call

    def identity(self):
        return dict(self.lm.identity)

    def cache_key(self):
        return model_cache_key(self.lm)

    def loglikelihood(self, requests):
        self.calls.append(len(requests))
        if self.fail_on_call is not None and len(self.calls) == self.fail_on_call:
            raise KeyboardInterrupt("killed")
        return [-float(len(r.context + r.continuation)) for r in requests]

    def generate(self, prompts, max_new_tokens=16):
        self.calls.append(len(prompts))
        return [f"{p[::-1]}|{max_new_tokens}" for p in prompts]


def reqs(*pairs):
    return [Request("Shared prefix. ", q, c) for q, c in pairs]


def test_hits_misses_and_duplicates_are_counted(tmp_path):
    inner = FakeScorer()
    scorer = CachedBackend(inner, ResultCache(tmp_path / "c.sqlite"), chunk_size=2)
    first = reqs(("q1", " a"), ("q1", " b"), ("q2", " a"), ("q1", " a"))  # the last repeats the first
    assert scorer.loglikelihood(first) == [-float(len("Shared prefix. " + q + c)) for q, c in [("q1", " a"), ("q1", " b"), ("q2", " a"), ("q1", " a")]]
    assert (scorer.hits, scorer.misses, scorer.scored) == (0, 4, 3)
    assert inner.calls == [2, 1]  # three distinct requests in chunks of two
    scorer.loglikelihood(reqs(("q1", " b"), ("q3", " a"), ("q2", " a")))
    assert (scorer.hits, scorer.misses, scorer.scored) == (2, 5, 4)
    assert inner.calls == [2, 1, 1]
    assert scorer.inner is inner and scorer.identity() == inner.identity() and scorer.name == inner.name


def test_a_repeated_run_scores_nothing_and_returns_the_same_values(tmp_path):
    path = tmp_path / "c.sqlite"
    requests = reqs(*[(f"q{i}", c) for i in range(10) for c in (" nurse", " doctor")])
    prompts = ["Who is it?", "Answer:"]
    first = CachedBackend(FakeScorer(), ResultCache(path), chunk_size=3)
    scores, texts = first.loglikelihood(requests), first.generate(prompts, max_new_tokens=8)

    inner = FakeScorer()  # a new process: a new connection, a new scorer
    again = CachedBackend(inner, ResultCache(path), chunk_size=3)
    assert again.loglikelihood(requests) == scores
    assert again.generate(prompts, max_new_tokens=8) == texts == ["?ti si ohW|8", ":rewsnA|8"]
    assert inner.calls == [] and again.scored == 0 and again.hits == 22
    again.generate(prompts, max_new_tokens=9)  # another length is another request
    assert inner.calls == [2]


def test_each_chunk_is_committed_before_the_next_so_an_interrupted_run_resumes(tmp_path):
    path = tmp_path / "c.sqlite"
    requests = reqs(*[(f"q{i}", " a") for i in range(10)])
    interrupted = CachedBackend(FakeScorer(fail_on_call=3), ResultCache(path), chunk_size=3)
    with pytest.raises(KeyboardInterrupt):
        interrupted.loglikelihood(requests)
    assert len(ResultCache(path)) == 6  # two chunks done, the third was in flight

    inner = FakeScorer()
    resumed = CachedBackend(inner, ResultCache(path), chunk_size=3)
    assert resumed.loglikelihood(requests) == FakeScorer().loglikelihood(requests)
    assert inner.calls == [3, 1] and (resumed.hits, resumed.scored) == (6, 4)


def test_nan_and_infinite_scores_survive_the_round_trip(tmp_path):
    class Odd(FakeScorer):
        def loglikelihood(self, requests):
            return [math.nan, -math.inf, -1.25][: len(requests)]

    path = tmp_path / "c.sqlite"
    requests = reqs(("x", " a"), ("y", " a"), ("z", " a"))
    CachedBackend(Odd(), ResultCache(path)).loglikelihood(requests)
    inner = FakeScorer()
    nan, ninf, value = CachedBackend(inner, ResultCache(path)).loglikelihood(requests)
    assert math.isnan(nan) and ninf == -math.inf and value == -1.25 and inner.calls == []


def test_model_key_changes_with_weights_dtype_revision_device_and_tokenizer():
    base = fake_model()
    key = model_cache_key(base)
    assert key == model_cache_key(fake_model())  # stable across loads
    assert key == model_cache_key(fake_model(model="/elsewhere/copy"))  # a local directory is its weights
    assert key != model_cache_key(fake_model(weights_sha256="def456"))
    assert key != model_cache_key(fake_model(dtype="bfloat16"))
    assert key != model_cache_key(fake_model(architecture="Other"))
    assert model_cache_key(fake_model(weights_sha256=None, model="org/m", revision="r1")) != model_cache_key(
        fake_model(weights_sha256=None, model="org/m", revision="r2"))
    assert model_cache_key(fake_model(weights_sha256=None, model="org/a")) != model_cache_key(
        fake_model(weights_sha256=None, model="org/b"))
    assert key != model_cache_key(replace(base, device=torch.device("meta")))
    assert key != model_cache_key(replace(base, tokenizer=FakeTokenizer({"a": 1, "b": 0})))


def test_request_key_changes_with_prompt_continuation_kind_and_length():
    k = request_key("m", "loglikelihood", "The nurse said", " she")
    assert k == request_key("m", "loglikelihood", "The nurse said", " she")
    others = {request_key("m2", "loglikelihood", "The nurse said", " she"),
              request_key("m", "loglikelihood", "The nurse said ", " she"),
              request_key("m", "loglikelihood", "The nurse said", " he"),
              request_key("m", "generate", "The nurse said", " she"),
              request_key("m", "generate", "The nurse said", 16),
              request_key("m", "generate", "The nurse said", 17)}
    assert k not in others and len(others) == 6


def test_the_key_of_a_scored_request_includes_the_model(tmp_path):
    path = tmp_path / "c.sqlite"
    requests = reqs(("q", " a"))
    CachedBackend(FakeScorer(), ResultCache(path)).loglikelihood(requests)
    other = FakeScorer(fake_model(dtype="float16"))
    CachedBackend(other, ResultCache(path)).loglikelihood(requests)
    assert other.calls == [1]


def _assert_one_line(exc: AuditError, *fragments):
    message = str(exc)
    assert "\n" not in message
    for f in fragments:
        assert f in message, message


def test_a_corrupt_cache_file_is_one_line_naming_it(tmp_path):
    path = tmp_path / "results.sqlite"
    path.write_bytes(b"this is not a database\n" * 200)
    with pytest.raises(AuditError) as err:
        ResultCache(path)
    _assert_one_line(err.value, str(path), "corrupt", "bias-audit cache clear")


def test_an_unwritable_cache_location_is_one_line_naming_it(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(AuditError) as err:
        ResultCache(blocker / "sub" / "results.sqlite")
    _assert_one_line(err.value, str(blocker / "sub" / "results.sqlite"), "BIAS_AUDIT_CACHE_DIR", "--no-cache")


def test_concurrent_writers_do_not_corrupt_the_cache(tmp_path):
    path = tmp_path / "c.sqlite"
    ResultCache(path).close()
    writer = (
        "import sys; from audit.backends.cached import ResultCache\n"
        "c = ResultCache(sys.argv[1]); w = sys.argv[2]\n"
        "for i in range(40): c.put_many('k' + w, w, 'loglikelihood', [(f'{w}-{i}-{j}', float(j)) for j in range(25)])\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", writer, str(path), w]) for w in ("a", "b", "c")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    cache = ResultCache(path)
    assert len(cache) == 3000
    assert {(e.model, e.loglikelihood) for e in cache.entries()} == {("a", 1000), ("b", 1000), ("c", 1000)}
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone() == ("ok",)


# --- the CLI ----------------------------------------------------------------------------------------


def bias_audit(*args, env=None, timeout=900):
    return subprocess.run([sys.executable, "-m", "audit.cli", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def test_cache_info_and_clear(tmp_path):
    env = {"BIAS_AUDIT_CACHE_DIR": str(tmp_path / "cache")}
    proc = bias_audit("cache", "info", "--json", env=env)
    assert proc.returncode == 0 and json.loads(proc.stdout)["models"] == [], proc.stderr
    with ResultCache(tmp_path / "cache" / "results.sqlite") as cache:
        cache.put_many("key-a" * 4, "model-a", "loglikelihood", [(f"a{i}", -1.0) for i in range(5)])
        cache.put_many("key-a" * 4, "model-a", "generate", [("ag", "text")])
        cache.put_many("key-b" * 4, "model-b", "loglikelihood", [(f"b{i}", -1.0) for i in range(3)])
    info = json.loads(bias_audit("cache", "info", "--json", env=env).stdout)
    assert info["path"] == str(tmp_path / "cache" / "results.sqlite") and info["bytes"] > 0
    assert [(m["model"], m["loglikelihood"], m["generate"]) for m in info["models"]] == [("model-a", 5, 1), ("model-b", 3, 0)]
    text = bias_audit("cache", "info", env=env).stdout
    assert "entries: 9" in text and "model-a" in text

    proc = bias_audit("cache", "clear", "--model", "model-a", env=env)
    assert proc.returncode == 0 and "removed 6 entries" in proc.stdout
    assert [m["model"] for m in json.loads(bias_audit("cache", "info", "--json", env=env).stdout)["models"]] == ["model-b"]
    proc = bias_audit("cache", "clear", env=env)
    assert proc.returncode == 0 and not (tmp_path / "cache" / "results.sqlite").exists()


def test_cli_corrupt_cache_is_one_line_exit_2_and_clear_removes_it(tmp_path, tiny_model_dir):
    env = {"BIAS_AUDIT_CACHE_DIR": str(tmp_path)}
    path = tmp_path / "results.sqlite"
    path.write_bytes(b"garbage" * 1000)
    for args in (("cache", "info"), ("run", "--model", tiny_model_dir, "--out", tmp_path / "out")):
        proc = bias_audit(*args, env=env)
        lines = [l for l in proc.stderr.splitlines() if l.strip()]
        assert proc.returncode == 2 and len(lines) == 1 and str(path) in lines[0], proc.stderr
        assert "Traceback" not in proc.stderr + proc.stdout
    assert bias_audit("cache", "clear", env=env).returncode == 0 and not path.exists()


# --- the session ------------------------------------------------------------------------------------


def test_session_scores_through_the_cache_and_a_new_session_scores_nothing(tmp_path, tiny_model_dir, monkeypatch):
    from audit import AuditSession, load_config

    log = tmp_path / "scored.log"
    monkeypatch.setenv("BIAS_AUDIT_SCORE_LOG", str(log))
    monkeypatch.delenv("BIAS_AUDIT_NO_CACHE", raising=False)

    def session(**options):
        s = AuditSession(config=load_config(None), model_specs=[str(tiny_model_dir)], **options)
        s.prepare()
        s.items = s.items[:24]
        return s

    first = session(cache_path=tmp_path / "c.sqlite").run(str(tiny_model_dir), "intrinsic")
    assert log.read_text().split() == ["loglikelihood", "48"]
    second = session(cache_path=tmp_path / "c.sqlite").run(str(tiny_model_dir), "intrinsic")
    assert log.read_text().split() == ["loglikelihood", "48"]  # nothing more was scored
    assert second.scores == first.scores and second.selections == first.selections

    uncached = session(cache_path=tmp_path / "off.sqlite", use_cache=False).run(str(tiny_model_dir), "intrinsic")
    assert uncached.scores == first.scores and not (tmp_path / "off.sqlite").exists()
    monkeypatch.setenv("BIAS_AUDIT_NO_CACHE", "1")
    session(cache_path=tmp_path / "env-off.sqlite").run(str(tiny_model_dir), "intrinsic")
    assert not (tmp_path / "env-off.sqlite").exists()


# --- kill and resume --------------------------------------------------------------------------------


def _rows(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:  # the writer is still creating the table
        return 0


def _scored(log: Path) -> list[int]:
    return [int(line.split("\t")[1]) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.slow
def test_a_run_killed_midway_resumes_to_the_same_results(tmp_path, tiny_model_dir):
    chunk = 128

    def run(name: str, cache: str, **popen):
        env = {**os.environ, "BIAS_AUDIT_CACHE_DIR": str(tmp_path / cache), "BIAS_AUDIT_CACHE_CHUNK": str(chunk),
               "BIAS_AUDIT_SCORE_LOG": str(tmp_path / f"{name}.log")}
        env.pop("BIAS_AUDIT_NO_CACHE", None)
        cmd = [sys.executable, "-m", "audit.cli", "run", "--model", str(tiny_model_dir), "--out", str(tmp_path / name)]
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **popen)

    full = run("full", "fresh-cache")
    assert full.wait(timeout=900) in (0, 1), full.stderr.read()[-3000:]
    total = sum(_scored(tmp_path / "full.log"))
    n_items = json.loads((tmp_path / "full" / "results.json").read_text())["provenance"]["data"]["n_items"]
    assert total == 2 * 2 * n_items and n_items == 1264  # two conditions, two candidates per item; both splits

    db = tmp_path / "cache" / "results.sqlite"
    killed = run("killed", "cache")
    deadline = time.monotonic() + 900
    while _rows(db) == 0:  # kill it once some, but not all, chunks are committed
        assert killed.poll() is None, "the run finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(timeout=60) == -signal.SIGKILL
    committed = _rows(db)
    assert 0 < committed < total  # rows are committed as batches finish (every 5 s or `chunk` rows)
    assert not (tmp_path / "killed" / "results.json").exists()

    resumed = run("resumed", "cache")
    assert resumed.wait(timeout=900) == full.returncode, resumed.stderr.read()[-3000:]
    assert comparable(tmp_path / "resumed" / "results.json") == comparable(tmp_path / "full" / "results.json")

    sent_after = sum(_scored(tmp_path / "resumed.log"))
    assert sent_after == total - committed  # the resumed run scored only what the cache lacked
    assert _rows(db) == total
