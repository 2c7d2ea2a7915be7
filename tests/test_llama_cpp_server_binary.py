"""The openai-completions backend against llama.cpp's own C++ ``llama-server`` (parallel slots, continuous
batching, prompt cache): it refuses echo, so the backend scores by forcing the continuation (a token-id
grammar). Started and stopped here (by PID) on the SmolLM2-135M-Instruct GGUF; skipped with a reason where no
``llama-server`` binary is found (``$BIAS_AUDIT_LLAMA_SERVER``, the cache folder .ci/run builds it into, PATH).
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import pytest

from tests.test_llama_server import gguf_path, hf_model, winobias_requests  # noqa: F401 - fixtures

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from llama_cpp_server import llama_server, llama_server_binary  # noqa: E402

pytestmark = pytest.mark.slow
SLOTS = 3


@pytest.fixture(scope="module")
def server_url(gguf_path):  # noqa: F811
    binary = llama_server_binary()
    if binary is None:
        pytest.skip("no llama-server binary (set BIAS_AUDIT_LLAMA_SERVER, or let .ci/run build it)")
    with llama_server(binary, gguf_path, alias="smollm2", threads=2, slots=SLOTS) as server:
        yield server.url


def backend(url, tokenizer, **options):
    from audit.backends.openai_completions import OpenAICompletionsBackend

    return OpenAICompletionsBackend.from_spec(f"openai-completions:{url}", tokenizer=tokenizer, model_name="smollm2",
                                              timeout=120, add_bos=True, **options)


def test_llama_server_scores_by_forcing_with_its_slots_and_agrees_with_hf(server_url, hf_model):  # noqa: F811
    from audit.backends.hf.scorer import Scorer

    requests = winobias_requests("zero_shot")[:12]
    b = backend(server_url, hf_model.tokenizer)
    served = b.loglikelihood(requests)
    identity = b.identity()
    assert b.forced and identity["scored_by"] == "forced" and identity["prompt_as"] == "token_ids"
    assert b.tuning["llama_cpp_slots"] == SLOTS and b.concurrency == SLOTS and identity["request"] == {"cache_prompt": True}
    bos = hf_model.tokenizer.bos_token
    from audit.backends.base import Request

    local = Scorer(hf_model, batch_size=8, progress=False).loglikelihood(
        [Request(bos + r.prefix, r.query, r.continuation) for r in requests])
    diffs = [abs(a - c) for a, c in zip(served, local)]
    same = [(a > b_) == (c > d) for a, b_, c, d in zip(served[::2], served[1::2], local[::2], local[1::2])]
    print(f"\nllama-server vs HF: choices {sum(same)}/{len(same)}, |diff| mean {statistics.mean(diffs):.4f}, max {max(diffs):.4f}")
    assert sum(same) >= len(same) - 1 and statistics.mean(diffs) < 0.3  # Q4_1 kernels vs dequantised float32


def test_llama_server_refuses_echo_in_one_line(server_url, hf_model):  # noqa: F811
    from audit.backends.openai_wire import ServerError

    with pytest.raises(ServerError, match=r"^server http://127\.0\.0\.1:\d+/v1"):
        backend(server_url, hf_model.tokenizer, score_by="echo").check()


def test_generation_through_llama_server(server_url, hf_model):  # noqa: F811
    b = backend(server_url, hf_model.tokenizer, extra_body={"repeat_penalty": 1.0})
    out = b.generate(["Sentence: The nurse phoned the doctor.\nAnswer: The", "Monday, Tuesday,"], max_new_tokens=3)
    assert len(out) == 2 and all(o.strip() for o in out), out
