"""The completions backend drives a server at its throughput: requests in flight chosen from the
server's answers (measured, or llama.cpp's slots), llama.cpp's ``cache_prompt`` asked for where the
server is llama.cpp's, shared prefixes sent together, and generation through the same bounded,
retrying client. Against in-process fake servers (tests/fake_servers.py) over a real tiny model;
the real llama.cpp server is in test_llama_server.py."""

from __future__ import annotations

import pytest

pytest.importorskip("httpx")

from fake_servers import VLLMShaped, cloze_requests, completions_backend, serve  # noqa: E402

from audit.backends.openai_tuning import FLOOR, choose_concurrency, prefix_order  # noqa: E402

LLAMA_CPP_PROPS = {"default_generation_settings": {"n_ctx": 2048, "params": {"cache_prompt": True}}, "total_slots": 3,
                   "build_info": "b0000-test"}


def backend(url, tiny, **options):
    return completions_backend(url, tiny.tokenizer, backoff=0.01, **options)


# ---------------------------------------------------------------- the choice, as arithmetic


@pytest.mark.parametrize("table, expected", [
    ([(1, 10.0), (2, 10.5)], FLOOR),  # one slot: a second request in flight adds nothing, keep the floor
    ([(1, 10.0), (2, 19.0), (4, 37.0), (8, 38.0)], 4),  # four slots: the knee
    ([(1, 10.0), (2, 20.0), (4, 40.0), (8, 80.0), (16, 160.0), (32, 300.0)], 32),  # still rising at the top
    ([(1, 10.0), (2, 20.0), (4, 22.0), (8, 44.0)], 2),  # the first doubling that does not pay ends the climb
])
def test_the_concurrency_is_the_last_doubling_that_paid(table, expected):
    assert choose_concurrency(table) == expected


def test_prefix_order_puts_requests_with_a_shared_prefix_together():
    jobs = [((1, 2, 3), (9,), "a"), ((5, 6), (7,), "b"), ((1, 2, 3), (8,), "c"), ((1, 2), (4,), "d"), ((5, 6), (2,), "e")]
    assert [j[2] for j in prefix_order(jobs)] == ["c", "a", "d", "e", "b"]  # (1,2,3,8) (1,2,3,9) (1,2,4) (5,6,2) (5,6,7)


# ---------------------------------------------------------------- against servers with known capacity


@pytest.mark.parametrize("slots, low, high", [(1, FLOOR, FLOOR), (4, 4, 8)])
def test_the_probe_measures_how_many_requests_the_server_runs_at_once(tiny, slots, low, high):
    """A server of ``slots`` sequences (0.3 s each): the measured rate stops rising past ``slots`` in flight."""
    server = VLLMShaped(tiny.model, tiny.tokenizer, slots=slots, seconds=0.3)
    with serve(server) as url:
        b = backend(url, tiny, batch_size=1)
        b.tune()
    assert b.tuning["concurrency_from"] == "measured"
    assert low <= b.concurrency <= high, b.tuning
    rates = dict(b.tuning["rates_in_flight"])
    gain = max(rates.values()) / rates[1]
    assert (gain < 1.3 if slots == 1 else gain > 2.5), b.tuning
    assert "cache_prompt" not in b.identity()["request"]  # not llama.cpp's server: nothing to ask for


def test_the_measurement_waits_for_the_first_real_request(tiny):
    """``check()`` (all an audit answered from the result cache needs) sends no timing requests."""
    server = VLLMShaped(tiny.model, tiny.tokenizer)
    with serve(server) as url:
        b = backend(url, tiny, batch_size=1)
        b.check()
        probed = len(server.bodies)
        assert b.tuning["concurrency_from"] is None and b.tuning["rates_in_flight"] == []
        b.loglikelihood(cloze_requests(1))
    assert b.tuning["concurrency_from"] == "measured" and len(server.bodies) > probed + 2


def test_a_concurrency_the_user_sets_is_used_as_given(tiny):
    server = VLLMShaped(tiny.model, tiny.tokenizer, slots=4, seconds=0.05)
    with serve(server) as url:
        b = backend(url, tiny, batch_size=1, concurrency=3)
        b.loglikelihood(cloze_requests(6))
    tuning = {k: b.tuning[k] for k in ("concurrency_from", "rates_in_flight", "llama_cpp_slots")}
    assert b.concurrency == 3 and tuning == {"concurrency_from": "user", "rates_in_flight": [], "llama_cpp_slots": None}
    assert server.most_in_flight == 3


def test_llama_cpp_server_gets_cache_prompt_and_its_slot_count(tiny):
    """llama.cpp's /props names it: every completion request asks for cache_prompt, one request per slot in flight."""
    from audit.backends.hf.scorer import Scorer

    requests = cloze_requests(6)
    server = VLLMShaped(tiny.model, tiny.tokenizer, props=LLAMA_CPP_PROPS, slots=3, seconds=0.02)
    with serve(server) as url:
        b = backend(url, tiny, batch_size=1)
        got = b.loglikelihood(requests)
        b.generate(["Sentence: The nurse", "Answer: The"], max_new_tokens=1)
        identity = b.identity()
    assert b.concurrency == 3 and b.tuning["concurrency_from"] == "llama.cpp /props total_slots"
    assert b.tuning["rates_in_flight"] == []  # the server said; nothing measured
    assert server.bodies and all(body.get("cache_prompt") is True for body in server.bodies)
    assert identity["request"] == {"cache_prompt": True}  # part of the cache key: it may change the last bits
    assert got == pytest.approx(Scorer(tiny, batch_size=4, progress=False).loglikelihood(requests), abs=1e-4)


def test_a_page_that_is_not_llama_cpps_props_changes_nothing(tiny):
    server = VLLMShaped(tiny.model, tiny.tokenizer, props={"total_slots": "many"})
    with serve(server) as url:
        b = backend(url, tiny, batch_size=1, concurrency=2)
        b.check()
    assert b.tuning["llama_cpp_slots"] is None and "cache_prompt" not in b.extra_body


def test_scores_come_back_in_input_order_whatever_order_they_are_sent_in(tiny):
    """Requests go out in prefix order; each score lands on its own request (reversed input, reversed scores)."""
    requests = cloze_requests(8)
    server = VLLMShaped(tiny.model, tiny.tokenizer)
    with serve(server) as url:
        b = backend(url, tiny, batch_size=4, concurrency=1)  # one at a time: the server sees the sending order
        forward = b.loglikelihood(requests)
        backward = b.loglikelihood(requests[::-1])
    assert backward == pytest.approx(forward[::-1], abs=1e-6)
    sent = [tuple(p) for body in server.bodies if body.get("echo") and isinstance(body["prompt"][0], list)
            for p in body["prompt"]][-len(requests):]
    assert sent == sorted(sent)  # the second run's prompts, as sent: shared prefixes next to each other


# ---------------------------------------------------------------- generation through the same client


def test_generation_keeps_requests_in_flight_and_retries_like_scoring(tiny):
    prompts = [f"Sentence {i}: The nurse" for i in range(9)]
    server = VLLMShaped(tiny.model, tiny.tokenizer, slots=8, seconds=0.05)
    with serve(server) as url:
        b = backend(url, tiny, batch_size=1, concurrency=3)
        b.check()
        expected = [b.generate([p], max_new_tokens=1)[0] for p in prompts]  # one at a time
        server.fail_first = {"generate": 2}
        server.most_in_flight, retries = 0, b.stats["retries"]
        got = b.generate(prompts, max_new_tokens=1)
    assert got == expected
    assert server.most_in_flight == 3  # bounded by the backend's concurrency, and using all of it
    assert b.stats["retries"] - retries == 2  # the two 503 answers were retried, not fatal


def test_generation_gives_up_with_one_line_after_its_retries(tiny):
    from audit.backends.openai_wire import ServerError

    server = VLLMShaped(tiny.model, tiny.tokenizer)
    with serve(server) as url:
        b = backend(url, tiny, batch_size=1, concurrency=2, max_retries=1)
        b.check()
        server.fail_first = {"generate": 10}
        with pytest.raises(ServerError, match=r"^server http://127\.0\.0\.1:\d+/v1/completions: HTTP 503: busy, try again$"):
            b.generate(["Answer: The"], max_new_tokens=1)
