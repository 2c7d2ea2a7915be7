"""Generation through the result cache in one call, committed as rows end (``generate_until_progressive``): the
HF backend gets all of a condition's uncached prompts at once (so its decoding batch is refilled across them
instead of draining every 16 prompts), each text is reported as soon as its row ends, the cache holds what was
reported when a call is interrupted, and the texts are those of the chunked path and of HF one prompt at a
time."""

from __future__ import annotations

import pytest

from audit.backends.base import Backend
from audit.backends.cached import CachedBackend, ResultCache
from audit.backends.hf.backend import HFBackend
from audit.prompts.render import render_prompt
from audit.prompts.stopping import REASONING
from test_generation import hf_one_at_a_time
from test_scoring import ITEMS, SHOTS, gpt2  # noqa: F401  (fixture)


def _prompts() -> list[str]:
    out = [render_prompt("chain_of_thought", it).text for it in ITEMS[:14]]
    out += [render_prompt("zero_shot", it, SHOTS[:2]).text for it in ITEMS[14:20]]
    return out + out[:3]  # repeated prompts answered with their first copy's text


def test_texts_are_reported_as_rows_end_each_once(gpt2):
    prompts = _prompts()
    backend = HFBackend(gpt2, batch_size=4)
    reports: list[list[int]] = []
    texts = backend.generate_until_progressive(prompts, 10, REASONING,
                                               lambda indices, out: reports.append([(i, out[i]) for i in indices]))
    reported = [pair for part in reports for pair in part]
    assert sorted(i for i, _ in reported) == list(range(len(prompts)))  # every prompt once, copies included
    assert all(text == texts[i] for i, text in reported)
    assert len(reports) > 1  # reported while the rest were still generating
    assert texts == backend.generate_until(prompts, 10, REASONING)


def test_cache_sends_every_miss_in_one_call_and_commits_progressively(gpt2, tmp_path, monkeypatch):
    prompts = _prompts()
    inner = HFBackend(gpt2, batch_size=4)
    calls, commits = [], []
    real_generate = inner.scorer.generate_tokens
    monkeypatch.setattr(inner.scorer, "generate_tokens",
                        lambda ps, *a, **k: calls.append(len(ps)) or real_generate(ps, *a, **k))
    cached = CachedBackend(inner, ResultCache(tmp_path / "c.sqlite"), generate_chunk_size=5)
    real_commit = cached._commit
    monkeypatch.setattr(cached, "_commit", lambda kind, rows: commits.append(len(rows)) or real_commit(kind, rows))
    texts = cached.generate_until(prompts, 10, REASONING)
    assert calls == [len(set(prompts))]  # the distinct misses in one call, not one per chunk of 5
    assert len(commits) > 1 and sum(commits) == len(set(prompts))
    assert texts == [REASONING.cut(gpt2.tokenizer.decode(hf_one_at_a_time(gpt2, p, 10, REASONING),
                                                         skip_special_tokens=True))[1] for p in prompts]
    chunked = Backend.generate_until_progressive  # a backend without its own: the chunked path, the same texts
    monkeypatch.setattr(HFBackend, "generate_until_progressive", chunked)
    again = CachedBackend(inner, ResultCache(tmp_path / "d.sqlite"), generate_chunk_size=5)
    calls.clear()
    assert again.generate_until(prompts, 10, REASONING) == texts
    assert calls == [5, 5, 5, 5]  # 20 distinct prompts in chunks of 5


def test_an_interrupted_call_keeps_the_texts_already_reported(gpt2, tmp_path, monkeypatch):
    prompts = _prompts()[:20]
    inner = HFBackend(gpt2, batch_size=4)
    path = tmp_path / "c.sqlite"
    seen = []

    def failing(ps, budget, stop, on_generated):
        def report(indices, out):
            seen.extend(indices)
            on_generated(indices, out)
            if len(seen) >= 6:
                raise KeyboardInterrupt

        return HFBackend.generate_until_progressive(inner, ps, budget, stop, report)

    monkeypatch.setattr(inner, "generate_until_progressive", failing)
    cached = CachedBackend(inner, ResultCache(path), generate_chunk_size=1000)
    with pytest.raises(KeyboardInterrupt):
        cached.generate_until(prompts, 10, REASONING)
    assert len(ResultCache(path)) == len(seen) >= 6  # flushed on the way out
    monkeypatch.undo()
    resumed = CachedBackend(HFBackend(gpt2, batch_size=4), ResultCache(path))
    assert resumed.generate_until(prompts, 10, REASONING) == HFBackend(gpt2, batch_size=4).generate_until(prompts, 10, REASONING)
    assert resumed.hits == len(seen)
