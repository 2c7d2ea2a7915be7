"""BOS and llama-cpp-python's server, against an in-process server shaped like it (tests/fake_servers.py)
over a real tiny model: its echo is right only after a BOS, which either we send (``add_bos``) or the
server puts in front itself (a GGUF whose ``add_bos_token`` is true, the common case); both score
exactly what the HF scorer scores after BOS. Twice a BOS is refused at start; none at all is refused by
the alignment probe (tests/test_llama_server.py, on the real server: a random tiny model's near-uniform
distributions cannot show a one-position shift)."""

from __future__ import annotations

import pytest

pytest.importorskip("httpx")

from fake_servers import LlamaCppPythonShaped, cloze_requests, completions_backend, serve  # noqa: E402

from audit.backends.base import Request  # noqa: E402
from audit.backends.openai_wire import ServerError  # noqa: E402


def backend(url, tiny, **options):
    return completions_backend(url, tiny.tokenizer, concurrency=2, **options)


def hf_after_bos(tiny, requests):
    from audit.backends.hf.scorer import Scorer

    bos = tiny.tokenizer.bos_token
    return Scorer(tiny, batch_size=4, progress=False).loglikelihood([Request(bos + r.prefix, r.query, r.continuation)
                                                                      for r in requests])


@pytest.mark.parametrize("server_adds_bos, we_add_bos", [(False, True), (True, False)])
def test_one_bos_from_either_side_scores_what_hf_scores_after_bos(tiny, server_adds_bos, we_add_bos):
    requests = cloze_requests(6, shots=False)
    with serve(LlamaCppPythonShaped(tiny.model, tiny.tokenizer, add_bos=server_adds_bos)) as url:
        b = backend(url, tiny, add_bos=we_add_bos)
        got = b.loglikelihood(requests)
        identity = b.identity()
    assert b.token_ids is False and b.batch_size == 1  # text prompts, one per request
    assert b.server_bos is server_adds_bos and identity["server_adds_bos"] is server_adds_bos
    assert got == pytest.approx(hf_after_bos(tiny, requests), abs=1e-4)


def test_a_second_bos_is_refused(tiny):
    with serve(LlamaCppPythonShaped(tiny.model, tiny.tokenizer, add_bos=True)) as url:
        with pytest.raises(ServerError, match=r"puts its own BOS in front of ours .*drop add_bos$"):
            backend(url, tiny, add_bos=True).check()


def test_an_empty_context_is_refused_not_misscored(tiny):
    """An empty context is conditioned on BOS alone, and llama-cpp-python nulls the first echoed entry (the
    token right after BOS): no number exists for it, and the backend says so in one line."""
    requests = [Request("", "", "The nurse"), Request("", "", "The doctor")]
    with serve(LlamaCppPythonShaped(tiny.model, tiny.tokenizer, add_bos=True)) as url:
        with pytest.raises(ServerError, match=r"no finite log-probability for continuation token 1 \('The'\)"):
            backend(url, tiny).loglikelihood(requests)
