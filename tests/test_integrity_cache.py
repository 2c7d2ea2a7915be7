"""The result cache (issue 15): `clear --model` matches exactly or by an explicit glob, commits by
time as well as by count, keeps what was scored on Ctrl-C, and cached and uncached runs store the
same scores."""

import time

import pytest

from audit import Backend, Request
from audit.backends.cached import CachedBackend, ResultCache
from audit.cli import main


class SlowProgressive(Backend):
    """Scores in batches of ``batch`` taking ``seconds`` each, reporting each batch as it finishes."""

    name = "slow"

    def __init__(self, batch=4, seconds=0.05, interrupt_after=None):
        self.batch, self.seconds, self.interrupt_after, self.sent = batch, seconds, interrupt_after, []

    def loglikelihood(self, requests):
        return self.loglikelihood_progressive(requests, lambda idx, out: None)

    def loglikelihood_progressive(self, requests, on_scored):
        self.sent.append(len(requests))
        out = [0.0] * len(requests)
        for n, start in enumerate(range(0, len(requests), self.batch)):
            if self.interrupt_after is not None and n == self.interrupt_after:
                raise KeyboardInterrupt
            time.sleep(self.seconds)
            idx = list(range(start, min(start + self.batch, len(requests))))
            for i in idx:
                out[i] = -float(len(requests[i].context)) - 0.1 * i
            on_scored(idx, out)
        return out

    def generate(self, prompts, max_new_tokens=16):
        return ["x"] * len(prompts)

    def identity(self):
        return {"model": "slow"}


def requests(n):
    return [Request("P. ", f"q{i} " * (i % 7 + 1), " a") for i in range(n)]


def test_commits_by_time_before_the_count_is_reached(tmp_path, monkeypatch):
    monkeypatch.setenv("BIAS_AUDIT_CACHE_COMMIT_S", "0.12")
    log = tmp_path / "commits.log"
    monkeypatch.setenv("BIAS_AUDIT_COMMIT_LOG", str(log))
    cache = ResultCache(tmp_path / "c.sqlite")
    backend = CachedBackend(SlowProgressive(batch=4, seconds=0.05), cache, chunk_size=10_000)
    backend.loglikelihood(requests(80))  # 20 batches, ~1 s: far below the count of 10,000
    commits = [line.split("\t") for line in log.read_text().splitlines()]
    assert len(commits) >= 5 and sum(int(c[1]) for c in commits) == 80
    gaps = [float(b[2]) - float(a[2]) for a, b in zip(commits, commits[1:])]
    assert max(gaps) < 0.12 + 0.05 + 0.1  # the interval, one batch, and scheduling slack
    assert len(cache) == 80


def test_ctrl_c_keeps_every_batch_already_scored(tmp_path, monkeypatch):
    monkeypatch.setenv("BIAS_AUDIT_CACHE_COMMIT_S", "100")  # no time-based commit before the interrupt
    path = tmp_path / "c.sqlite"
    inner = SlowProgressive(batch=4, seconds=0.0, interrupt_after=3)
    with pytest.raises(KeyboardInterrupt):
        CachedBackend(inner, ResultCache(path), chunk_size=10_000).loglikelihood(requests(40))
    assert len(ResultCache(path)) == 12  # three batches scored, all kept
    resumed = SlowProgressive(batch=4, seconds=0.0)
    CachedBackend(resumed, ResultCache(path)).loglikelihood(requests(40))
    assert resumed.sent == [28]  # only what the cache lacked


def test_cached_and_uncached_runs_store_the_same_scores(tmp_path, tiny_model_dir):
    """A cold cached run and a --no-cache run (an in-memory store) send the model the same batches,
    so they store bit-identical float64 scores; a warm run reads them back exactly."""
    from audit.backends.hf.backend import HFBackend
    from audit.backends.hf.loading import load_model

    hf = HFBackend(load_model(str(tiny_model_dir)), batch_size=8, progress=False)
    occ = ["nurse", "cook", "developer", "designer", "lawyer", "baker", "clerk", "chief"]
    reqs = [Request("Question: who? ", f"The {a} met the {b} because she", f" {a}") for a in occ for b in occ] * 2
    on_disk = CachedBackend(hf, ResultCache(tmp_path / "c.sqlite"), chunk_size=7)
    cold = on_disk.loglikelihood(reqs)
    uncached = CachedBackend(hf, ResultCache(None), chunk_size=7).loglikelihood(reqs)
    warm = CachedBackend(hf, ResultCache(tmp_path / "c.sqlite")).loglikelihood(reqs)
    assert cold == uncached == warm == hf.loglikelihood(reqs[: len(reqs) // 2]) * 2


def _cache_with(tmp_path, names):
    path = tmp_path / "results.sqlite"
    with ResultCache(path) as cache:
        for n, name in enumerate(names):
            cache.put_many(f"{n:032x}", name, "loglikelihood", [(f"k{n}", -1.0), (f"j{n}", -2.0)])
    return path


def test_cache_clear_model_matches_exactly_never_as_an_sql_pattern(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BIAS_AUDIT_CACHE_DIR", str(tmp_path))
    path = _cache_with(tmp_path, ["model1", "model2", "other-model", "______"[:5] + "x"])
    assert main(["cache", "clear", "--model", "______"]) == 0
    assert "removed 0 entries" in capsys.readouterr().out
    assert main(["cache", "clear", "--model", "model%"]) == 0
    with ResultCache(path) as cache:
        assert len(cache) == 8
    assert main(["cache", "clear", "--model", "model1"]) == 0
    with ResultCache(path) as cache:
        assert cache.models() == ["_____x", "model2", "other-model"]
    assert main(["cache", "clear", "--model", "*model*", "--glob"]) == 0
    with ResultCache(path) as cache:
        assert cache.models() == ["_____x"]


def test_cache_clear_by_model_key_prefix_needs_six_hex_digits(tmp_path):
    path = _cache_with(tmp_path, ["a", "b"])
    with ResultCache(path) as cache:
        assert cache.clear("00000") == 0  # too short to be a key prefix
        assert cache.clear("0" * 31 + "1") == 2
        assert cache.models() == ["a"]
