"""Issue 23, classes 2, 7 and 8: a real local server that misbehaves on demand. Impossible numbers
(log-probabilities > 0, logits), malformed fields (null index, non-numeric ids, numbers as text), huge
echoes and slow drips are each refused with one line (at most 500 characters) naming the server."""

import socket
import threading
import time

import pytest

from fake_servers import VLLMShaped, serve

from audit.backends.openai_completions import OpenAICompletionsBackend, _settings
from audit import BackendOptions
from audit.backends.openai_wire import ServerError
from audit import ConfigError


class Tampering(VLLMShaped):
    """vLLM-shaped answers passed through ``tamper(body, payload)`` before they are sent."""

    def __init__(self, model, tokenizer, tamper):
        super().__init__(model, tokenizer)
        self.tamper = tamper

    def __call__(self, method, path, body, headers):
        status, payload = super().__call__(method, path, body, headers)
        if path.endswith("/completions") and status == 200:
            self.tamper(body, payload)
        return status, payload


def _plus_30_nats(body, payload):
    for choice in payload["choices"]:
        for entry in choice.get("prompt_logprobs") or []:
            for v in (entry or {}).values():
                v["logprob"] += 30.0
        choice["logprobs"]["token_logprobs"] = [x + 30.0 for x in choice["logprobs"]["token_logprobs"]]


def _openai_shape_positive(body, payload):
    for choice in payload["choices"]:
        plp = choice.pop("prompt_logprobs", None)
        if plp:
            ids = body["prompt"] if isinstance(body["prompt"][0], int) else body["prompt"][0]
            choice["logprobs"] = {"tokens": [f"token_id:{i}" for i in ids],
                                  "token_logprobs": [None] + [0.5] * (len(ids) - 1), "top_logprobs": None}


def _logits_not_logprobs(body, payload):  # all negative but far too small: logits minus a constant
    for choice in payload["choices"]:
        for entry in choice.get("prompt_logprobs") or []:
            for v in (entry or {}).values():
                v["logprob"] -= 40.0
        choice["logprobs"]["token_logprobs"] = [x - 40.0 for x in choice["logprobs"]["token_logprobs"]]


def _null_index(body, payload):
    payload["choices"][0]["index"] = None


def _non_numeric_key(body, payload):
    for choice in payload["choices"]:
        plp = choice.get("prompt_logprobs")
        if plp and len(plp) > 1:
            plp[1] = {"abc": {"logprob": -1.0}}


def _token_id_x1(body, payload):
    if not body.get("echo"):
        return
    for choice in payload["choices"]:
        choice.pop("prompt_logprobs", None)
        choice["logprobs"] = {"tokens": ["token_id:x1", "token_id:2"], "token_logprobs": [None, -1.0]}


def _huge_token(body, payload):
    if not body.get("echo"):
        return
    for choice in payload["choices"]:
        choice.pop("prompt_logprobs", None)
        n = len(body["prompt"]) + 1
        choice["logprobs"] = {"tokens": ["X" * 50_000_000] + ["a"] * (n - 1), "token_logprobs": [None] + [-1.0] * (n - 1)}


def _string_logprob(body, payload):
    for choice in payload["choices"]:
        choice["logprobs"]["token_logprobs"] = ["-0.5"]


@pytest.mark.parametrize("tamper, message", [
    (_plus_30_nats, r"log-probability of \d+\.\d+ > 0"),
    (_openai_shape_positive, r"log-probability of 0.5 > 0"),
    (_logits_not_logprobs, r"below -log\(vocabulary size\)"),
    (_null_index, r"not indexed 0..0 \(got \[None\]\)"),
    (_non_numeric_key, r"token id is not an integer \(got 'abc'\)"),
    (_token_id_x1, r"token id is not an integer \(got 'x1'\)"),
    (_huge_token, r"tokens differ from ours"),
    (_string_logprob, r"log-probability is not a number \(got '-0.5'\)"),
])
def test_hostile_answers_are_one_line_naming_the_server(tiny, tamper, message):
    with serve(Tampering(tiny.model, tiny.tokenizer, tamper)) as url:
        backend = OpenAICompletionsBackend(url, tiny.tokenizer, timeout=30, batch_size=1)
        with pytest.raises(ServerError, match=message) as err:
            backend.check()
            backend.loglikelihood([])
            from test_openai_backend import cloze_requests
            backend.loglikelihood(cloze_requests(1))
    line = str(err.value)
    assert line.startswith(f"server {url}") and "\n" not in line and len(line) <= 500


def test_a_generation_whose_text_is_a_number_is_refused(tiny):
    def tamper(body, payload):
        if not body.get("echo") and body.get("logprobs") is None:
            payload["choices"][0]["text"] = 42

    with serve(Tampering(tiny.model, tiny.tokenizer, tamper)) as url:
        backend = OpenAICompletionsBackend(url, tiny.tokenizer, timeout=30, batch_size=1)
        with pytest.raises(ServerError, match=r"a generation's text is not a string \(got 42\)"):
            backend.generate(["Answer: The"], max_new_tokens=1)


def test_a_server_that_drips_bytes_meets_the_request_deadline():
    """The timeout bounds a whole request: a server sending one byte every 0.3 s never finishes in time."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip():
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
        while not stop.is_set():
            try:
                conn.sendall(b" ")
            except OSError:
                break
            time.sleep(0.3)
        conn.close()

    threading.Thread(target=drip, daemon=True).start()
    from audit.backends.openai_http import Transport

    t = Transport(f"http://127.0.0.1:{listener.getsockname()[1]}/v1", where="server drip", api_key=None,
                  concurrency=1, timeout=1.0, max_retries=0, backoff=0.01)
    start = time.monotonic()
    try:
        with pytest.raises(ServerError, match=r"no answer within 1 s for the whole request"):
            t.run(lambda c: c.get("/models"))
    finally:
        stop.set()
        listener.close()
    assert time.monotonic() - start < 5


def test_the_run_deadline_ends_a_run_of_slow_answers():
    from audit.backends.openai_http import Transport

    with serve(lambda *a: time.sleep(0.4) or (200, {"data": []})) as url:
        t = Transport(url, where="server slow", api_key=None, concurrency=1, timeout=5, max_retries=0, backoff=0.01,
                      deadline=1.0)

        async def many(c):
            for _ in range(20):
                await c.get("/models")

        start = time.monotonic()
        with pytest.raises(ServerError, match=r"the run's deadline of 1 s passed"):
            t.run(many)
        assert time.monotonic() - start < 3


@pytest.mark.parametrize("option, message", [
    ("timeout=nan", "timeout=nan: expected a finite number of seconds greater than 0"),
    ("timeout=-1", "expected a finite number of seconds greater than 0"),
    ("deadline=inf", "deadline=inf: expected a finite number"),
    ("concurrency=0", "concurrency=0: must be at least 1"),
    ("batch_size=0", "batch_size=0: must be at least 1"),
    ("max_retries=-3", "max_retries=-3: must be at least 0"),
    ("add_bos=ture", "add_bos=ture: expected true or false"),
    ("concurrency=2.5", "concurrency=2.5: expected an integer"),
])
def test_bad_backend_options_are_one_line(option, message):
    key, _, value = option.partition("=")
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _settings(BackendOptions(extra={"tokenizer": "x", key: value}))
