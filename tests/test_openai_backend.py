"""The openai-completions backend without a real server: response parsing (OpenAI and vLLM shapes),
every refusal, retries, secrets, and the whole backend against a vLLM-shaped server over a real
(tiny) transformers model, checked against the HF scorer. The real llama.cpp server is in
test_llama_server.py."""

from __future__ import annotations

import pytest

pytest.importorskip("httpx")

from fake_servers import VLLMShaped, cloze_requests, serve  # noqa: E402

from audit import Request  # noqa: E402
from audit.backends.openai_http import Transport  # noqa: E402
from audit.backends.openai_wire import (  # noqa: E402
    ServerError, check_alignment, choices_in_order, continuation_logprob, parse_echo, strip_credentials,
)

WHERE = "server http://127.0.0.1:1/v1"
VOCAB = {1: "<s>", 10: "The", 11: " nurse", 12: " said", 13: " the", 14: " doctor", 15: " x"}
piece = VOCAB.__getitem__
CTX, CONT = [1, 10, 11, 12, 13], [14]  # "<s>The nurse said the" + " doctor"


def openai_choice(tokens, logprobs):
    return {"index": 0, "text": "", "logprobs": {"tokens": tokens, "token_logprobs": logprobs, "top_logprobs": []}}


# ---------------------------------------------------------------- parsing


def test_openai_shape_with_bos_dropped_and_a_generated_entry():
    """llama-cpp-python: the leading BOS is not echoed; one generated entry follows the prompt."""
    choice = openai_choice(["The", " nurse", " said", " the", " doctor", " x"], [None, -1.0, -2.0, -3.0, -0.5, -9.0])
    assert continuation_logprob(parse_echo(choice, WHERE), CTX, CONT, 1, piece, WHERE) == -0.5
    two = continuation_logprob(parse_echo(choice, WHERE), CTX[:-1], [13, 14], 1, piece, WHERE)
    assert two == -3.5  # sliced by counts: the generated entry is never read


def test_openai_shape_without_generated_entry_and_with_bos_echoed():
    """vLLM's echo (BOS echoed, first entry null) and max_tokens 0 / EOS (no generated entry)."""
    choice = openai_choice(["<s>", "The", " nurse", " said", " the", " doctor"], [None, -4.0, -1.0, -2.0, -3.0, -0.5])
    assert continuation_logprob(parse_echo(choice, WHERE), CTX, CONT, 1, piece, WHERE) == -0.5
    assert continuation_logprob(parse_echo(choice, WHERE), CTX[:3], [12, 13, 14], 1, piece, WHERE) == -5.5


def test_vllm_prompt_logprobs_keyed_by_token_id():
    plp = [None] + [{str(t): {"logprob": -float(i), "rank": 1, "decoded_token": VOCAB[t]}, "15": {"logprob": -0.1}}
                    for i, t in enumerate(CTX[1:] + CONT, start=1)]
    choice = {"index": 0, "text": "", "prompt_logprobs": plp, "logprobs": {"tokens": [" x"], "token_logprobs": [-1.0]}}
    assert continuation_logprob(parse_echo(choice, WHERE), CTX, CONT, 1, piece, WHERE) == -5.0
    assert continuation_logprob(parse_echo(choice, WHERE), CTX[:4], [13, 14], 1, piece, WHERE) == -9.0


def test_vllm_tokens_as_token_ids():
    choice = openai_choice([f"token_id:{t}" for t in CTX + CONT], [None, -1.0, -1.0, -1.0, -1.0, -0.25])
    assert continuation_logprob(parse_echo(choice, WHERE), CTX, CONT, 1, piece, WHERE) == -0.25


# ---------------------------------------------------------------- refusals


def test_refuses_echo_that_differs_from_our_tokens():
    choice = openai_choice(["The", " nurse", " says", " the", " doctor"], [None, -1.0, -2.0, -3.0, -0.5])
    with pytest.raises(ServerError, match=r"^server http://127\.0\.0\.1:1/v1: the server's tokens differ from ours at prompt token 3"):
        continuation_logprob(parse_echo(choice, WHERE), CTX, CONT, 1, piece, WHERE)


def test_refuses_vllm_prompt_logprobs_without_our_token():
    plp = [None] + [{"15": {"logprob": -1.0}} for _ in CTX[1:] + CONT]
    with pytest.raises(ServerError, match="tokens differ from ours at prompt token 1"):
        continuation_logprob(parse_echo({"prompt_logprobs": plp}, WHERE), CTX, CONT, 1, piece, WHERE)


def test_refuses_a_server_that_ignores_echo():
    choice = openai_choice([" x"], [-1.0])  # llama-server: the generated token only
    with pytest.raises(ServerError, match="does not return prompt log-probabilities"):
        continuation_logprob(parse_echo(choice, WHERE), CTX, CONT, 1, piece, WHERE)


def test_refuses_a_response_without_logprobs_or_with_null_continuation_logprob():
    with pytest.raises(ServerError, match="no log-probabilities"):
        parse_echo({"index": 0, "text": "The nurse"}, WHERE)
    choice = openai_choice(["The", " nurse", " said", " the", " doctor"], [None, -1.0, -2.0, -3.0, None])
    with pytest.raises(ServerError, match="no finite log-probability for continuation token 5"):
        continuation_logprob(parse_echo(choice, WHERE), CTX, CONT, 1, piece, WHERE)
    with pytest.raises(ServerError, match="4 tokens but 3 token_logprobs"):
        parse_echo(openai_choice(["a", "b", "c", "d"], [None, 1.0, 2.0]), WHERE)


def test_refuses_wrong_number_of_choices():
    with pytest.raises(ServerError, match="expected 2 completion choice"):
        choices_in_order({"choices": [{"index": 0}]}, 2, WHERE)
    assert [c["index"] for c in choices_in_order({"choices": [{"index": 1}, {"index": 0}]}, 2, WHERE)] == [0, 1]


def test_alignment_probe_accepts_aligned_and_refuses_shifted_servers():
    ids = [1, 10, 11, 12]  # P = <s>The nurse; g = " said", generated with log-prob -0.7
    aligned = openai_choice(["The", " nurse", " said"], [None, -2.0, -0.7])
    check_alignment(-0.7, parse_echo(aligned, WHERE), ids, 1, piece, WHERE)
    shifted = openai_choice(["The", " nurse", " said"], [None, -0.7, -5.0])
    with pytest.raises(ServerError, match="do not match its own generation"):
        check_alignment(-0.7, parse_echo(shifted, WHERE), ids, 1, piece, WHERE)
    no_bos = openai_choice(["The", " nurse", " said"], [None, -0.7, -5.0])
    with pytest.raises(ServerError, match=r"one position off .*add BOS"):
        check_alignment(-0.7, parse_echo(no_bos, WHERE), ids[1:], 1, piece, WHERE)


def test_urls_lose_credentials():
    assert strip_credentials("https://user:pw@host.example:8443/v1/?api_key=s3cret") == "https://host.example:8443/v1"


# ---------------------------------------------------------------- HTTP: retries, errors, secrets


def transport(url, **kw):
    opts = {"where": "server test", "api_key": None, "concurrency": 2, "timeout": 5.0, "max_retries": 3, "backoff": 0.01}
    return Transport(url, **{**opts, **kw})


def scripted(*answers):
    """A handler that gives these (status, payload) answers in turn, then 200."""
    seen = []

    def handler(method, path, body, headers):
        seen.append(headers)
        return answers[len(seen) - 1] if len(seen) <= len(answers) else (200, {"data": [{"id": "m"}]})

    return handler, seen


@pytest.mark.parametrize("failure", [(503, {"error": "busy"}), (500, {"error": "oops"}), (200, None)])
def test_retries_5xx_and_dropped_connections(failure):
    handler, seen = scripted(failure, failure)
    with serve(handler) as url:
        t = transport(url)
        assert t.run(lambda c: c.get("/models")) == {"data": [{"id": "m"}]}
    assert len(seen) == 3 and t.stats["retries"] == 2


def test_gives_up_after_the_last_retry_with_one_line():
    handler, seen = scripted(*[(503, {"error": {"message": "overloaded"}})] * 10)
    with serve(handler) as url, pytest.raises(ServerError, match=r"^server test/models: HTTP 503: overloaded$"):
        transport(url, max_retries=2).run(lambda c: c.get("/models"))
    assert len(seen) == 3


def test_client_errors_are_not_retried_and_secrets_are_redacted(monkeypatch):
    secret = "sk-test-abcdefghijklmnopqrstuvwxyz123456"
    monkeypatch.setenv("BIAS_AUDIT_API_KEY", secret)

    def handler(method, path, body, headers):  # a careless server that echoes the credentials
        return 401, {"error": {"message": f"bad key {headers.get('Authorization')}"}}

    seen = []
    with serve(lambda *a: seen.append(1) or handler(*a)) as url:
        from audit.backends.openai_http import api_key

        with pytest.raises(ServerError) as err:
            transport(url, api_key=api_key(None)).run(lambda c: c.get("/models"))
    assert len(seen) == 1
    assert secret not in str(err.value) and "[REDACTED]" in str(err.value) and "HTTP 401" in str(err.value)


def test_unreachable_server_and_timeout_are_one_line():
    with pytest.raises(ServerError, match=r"cannot reach the server \(ConnectError after 2 tries\)"):
        transport("http://127.0.0.1:9/v1", max_retries=1).run(lambda c: c.get("/models"))
    import time

    with serve(lambda *a: time.sleep(1.0) or (200, {})) as url:
        with pytest.raises(ServerError, match=r"no answer within 0.2 s"):
            transport(url, timeout=0.2).run(lambda c: c.get("/models"))


def test_api_key_env_must_exist():
    from audit import ConfigError
    from audit.backends.openai_http import api_key

    with pytest.raises(ConfigError, match="environment variable NO_SUCH_KEY_VAR is not set"):
        api_key("NO_SUCH_KEY_VAR")


# ---------------------------------------------------------------- the backend against a vLLM-shaped server


def test_backend_matches_the_hf_scorer_through_a_vllm_shaped_server(tiny, monkeypatch):
    from audit.backends.hf.scorer import Scorer
    from audit.backends.openai_completions import OpenAICompletionsBackend

    monkeypatch.setenv("BIAS_AUDIT_API_KEY", "sk-never-in-identity-0123456789")
    requests = cloze_requests(12)
    expected = Scorer(tiny, batch_size=4, progress=False).loglikelihood(requests)
    server = VLLMShaped(tiny.model, tiny.tokenizer)
    with serve(server) as url:
        backend = OpenAICompletionsBackend.from_spec(f"openai-completions:{url}", tokenizer=tiny.tokenizer,
                                                     concurrency=3, timeout=30, batch_size=5)
        got = backend.loglikelihood(requests)
        identity = backend.identity()
        texts = backend.generate(["Sentence: The nurse", "Answer: The"], max_new_tokens=1)
    assert got == pytest.approx(expected, abs=1e-4)
    assert backend.token_ids is True and backend.batch_size == 5
    scoring = [b for b in server.bodies if b.get("echo") and isinstance(b["prompt"][0], list) and len(b["prompt"]) > 2]
    assert scoring and all(b["max_tokens"] == 1 and b["logprobs"] == 1 and b["temperature"] == 0 for b in scoring)
    assert identity["model"] == "tiny" and identity["server_version"] == "0.0-test" and identity["owned_by"] == "vllm"
    assert "sk-never" not in repr(identity) and identity["server"] == url
    assert len(texts) == 2 and all(isinstance(t, str) and t for t in texts)


@pytest.mark.parametrize("kind, message", [
    ("ignore_echo", "does not return prompt log-probabilities"),
    ("shift", "add BOS"),
])
def test_backend_refuses_misaligned_servers_at_start(tiny, kind, message):
    from audit.backends.openai_completions import OpenAICompletionsBackend

    with serve(VLLMShaped(tiny.model, tiny.tokenizer, **{kind: True})) as url:
        backend = OpenAICompletionsBackend(url, tiny.tokenizer, timeout=30)
        with pytest.raises(ServerError, match=message):
            backend.loglikelihood(cloze_requests(1))


def test_backend_refuses_an_unknown_model_name_and_a_bad_spec(tiny):
    from audit import ConfigError
    from audit.backends.openai_completions import OpenAICompletionsBackend

    with serve(VLLMShaped(tiny.model, tiny.tokenizer)) as url:
        backend = OpenAICompletionsBackend(url, tiny.tokenizer, model_name="llama-70b")
        with pytest.raises(ServerError, match=r"model 'llama-70b' is not served \(it serves: tiny\)"):
            backend.check()
    with pytest.raises(ConfigError, match="expected a server URL"):
        OpenAICompletionsBackend.from_spec("openai-completions:localhost:8000", tokenizer=tiny.tokenizer)
    with pytest.raises(ConfigError, match="needs a tokenizer"):
        OpenAICompletionsBackend.from_spec("openai-completions:http://127.0.0.1:8000/v1")


def test_an_audit_through_the_registry_equals_the_hf_backend_on_the_same_model(tiny, tiny_model_dir):
    """`--model openai-completions:URL --backend-option tokenizer=DIR` goes through the backend seam: the same
    audit as the HF backend on the model the server serves (choices equal, scores within 1e-4)."""
    from audit import AuditOptions, build_session

    def audit(model: str, backend_options: list[str]) -> tuple[list, list]:
        session = build_session(AuditOptions(model=[model], backend_option=backend_options, no_cache=True))
        session.items = session.items[:24]
        run = session.run(model, "zero_shot")
        return run.selections, [s for sc in run.scores for s in sc]

    hf_choices, hf_scores = audit(str(tiny_model_dir), [])
    with serve(VLLMShaped(tiny.model, tiny.tokenizer)) as url:
        spec = f"openai-completions:{url}"
        server_choices, server_scores = audit(spec, [f"tokenizer={tiny_model_dir}", "concurrency=2"])
    assert server_choices == hf_choices
    assert server_scores == pytest.approx(hf_scores, abs=1e-4)


def test_backend_options_are_checked_before_anything_loads(tiny_model_dir):
    from audit import BackendOptions
    from audit.backends import check_backend
    from audit import ConfigError

    with pytest.raises(ConfigError, match="needs the tokenizer"):
        check_backend("openai-completions:http://127.0.0.1:9/v1", BackendOptions())
    with pytest.raises(ConfigError, match="not an option of openai-completions"):
        check_backend("openai-completions:http://127.0.0.1:9/v1", BackendOptions(extra={"tokenizer": "x", "colour": "red"}))
    with pytest.raises(ConfigError, match="expected a server URL"):
        check_backend("openai-completions:localhost:9", BackendOptions(extra={"tokenizer": "x"}))
