"""Issue 23: hypothesis fuzzes a real local server's answers (shapes, types, numbers, sizes) to the
completions backend: every answer is either used (finite log-probabilities <= 0) or refused with one
AuditError line of at most 500 characters naming the server; never another exception, never a secret."""

import math
import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fake_servers import VLLMShaped, serve
from test_openai_backend import cloze_requests

from audit.backends.openai_completions import OpenAICompletionsBackend
from audit import AuditError
from audit.results.redaction import redact

SECRET = "fz-Secret-9911xx"

numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**30, 10**30), st.just(0.5),
                    st.just(-1.0), st.none(), st.text(max_size=5), st.just(SECRET), st.booleans())
keys = st.one_of(st.integers(0, 200).map(str), st.text(max_size=6), st.just("token_id:x1"))
entry = st.one_of(st.none(), st.dictionaries(keys, st.one_of(numbers, st.fixed_dictionaries({"logprob": numbers})), max_size=3))
tokens = st.lists(st.one_of(st.text(max_size=8), st.integers(), st.none(), st.just("token_id:7"), st.just(SECRET),
                            st.just("Y" * 100_000)), max_size=20)
choice = st.fixed_dictionaries({}, optional={
    "index": st.one_of(st.integers(-1, 3), st.none(), st.text(max_size=2)),
    "text": st.one_of(st.text(max_size=5), st.integers(), st.none()),
    "prompt_logprobs": st.one_of(st.none(), st.lists(entry, max_size=20), st.integers()),
    "logprobs": st.one_of(st.none(), st.integers(), st.fixed_dictionaries({}, optional={
        "tokens": st.one_of(tokens, st.integers()), "token_logprobs": st.one_of(st.lists(numbers, max_size=20), st.text())})),
})
answers = st.one_of(st.fixed_dictionaries({"choices": st.lists(choice, min_size=0, max_size=3)},
                                          optional={"usage": st.dictionaries(st.just("prompt_tokens"), numbers)}),
                    st.lists(st.integers(), max_size=3), st.text(max_size=20), st.none().map(lambda _: {}))


@pytest.fixture(scope="module")
def server_and_backend(tiny_model_dir):
    from audit.backends.hf.loading import load_model

    tiny = load_model(str(tiny_model_dir), device="cpu", dtype="float32")
    real = VLLMShaped(tiny.model, tiny.tokenizer)
    state = {"fuzz": None}

    def handler(method, path, body, headers):
        if state["fuzz"] is not None and path.endswith("/completions"):
            return 200, state["fuzz"]
        return real(method, path, body, headers)

    os.environ["FUZZ_AUTH"] = SECRET  # the key the server may echo back, as token, number or text
    with serve(handler) as url:
        backend = OpenAICompletionsBackend(url, tiny.tokenizer, timeout=30, batch_size=1, max_retries=0,
                                           api_key_env="FUZZ_AUTH")
        backend.check()  # the probe meets an honest server; then the answers turn hostile
        yield state, backend, url


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(payload=answers)
def test_fuzzed_answers_are_used_or_refused_in_one_line(server_and_backend, payload):
    state, backend, url = server_and_backend
    state["fuzz"] = payload
    requests = cloze_requests(1)[:1]
    try:
        got = backend.loglikelihood(requests)
    except AuditError as exc:
        line = redact(str(exc))  # as the CLI prints it
        assert "\n" not in line and len(line) <= 500 and url in line and SECRET not in line
    else:
        assert all(math.isfinite(v) and v <= 1e-4 * 50 for v in got)
    try:
        texts = backend.generate(["Answer: The"], max_new_tokens=1)
    except AuditError as exc:
        assert "\n" not in str(exc) and len(str(exc)) <= 500 and url in str(exc)
    else:
        assert all(isinstance(t, str) for t in texts)
