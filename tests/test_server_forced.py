"""Forced scoring's wire rules (audit.backends.openai_forced), on hand-written server answers of both shapes."""

from __future__ import annotations

import pytest

from audit.backends.openai_forced import check_forced, first_alternatives, forced_body, forced_logprobs, token_grammar
from audit.backends.openai_wire import ServerError

PIECES = {5: " The", 7: " nurse", 9: " doctor"}
piece = PIECES.__getitem__


def openai_shape(tokens, values, top=None):
    return {"text": "".join(tokens), "logprobs": {"tokens": tokens, "token_logprobs": values, "top_logprobs": top}}


def llama_server_shape(entries):
    return {"text": "", "logprobs": {"content": [{"id": i, "token": piece(i), "logprob": v,
                                                  "top_logprobs": [{"id": i, "token": piece(i), "logprob": v}]}
                                                 for i, v in entries]}}


def test_the_grammar_allows_exactly_our_tokens_by_id():
    assert token_grammar([5, 7]) == "root ::= <[5]> <[7]>"
    body = forced_body("m", [1, 2], [5, 7], extra={"cache_prompt": True})
    assert body["max_tokens"] == 2 and body["echo"] is False and body["grammar"] == "root ::= <[5]> <[7]>"
    assert body["cache_prompt"] is True and body["temperature"] == 0


def test_forced_log_probabilities_are_read_from_either_shape():
    assert forced_logprobs(openai_shape([" The", " nurse"], [-0.5, -2.0]), [5, 7], piece, "s") == [-0.5, -2.0]
    assert forced_logprobs(llama_server_shape([(5, -0.5), (7, -2.0)]), [5, 7], piece, "s") == [-0.5, -2.0]


@pytest.mark.parametrize("choice", [
    openai_shape([" The", " doctor"], [-0.5, -2.0]),  # another token (the grammar ignored)
    openai_shape([" The"], [-0.5]),  # stopped early
    llama_server_shape([(5, -0.5), (9, -2.0)]),  # by id
])
def test_a_server_that_generated_other_tokens_is_refused_in_one_line(choice):
    with pytest.raises(ServerError, match=r"^s: the server did not generate the tokens its grammar allowed"):
        forced_logprobs(choice, [5, 7], piece, "s")


def test_a_positive_or_missing_log_probability_is_refused():
    with pytest.raises(ServerError, match="> 0"):
        forced_logprobs(openai_shape([" The"], [0.7]), [5], piece, "s")
    with pytest.raises(ServerError, match="no finite log-probability"):
        forced_logprobs(openai_shape([" The"], [None]), [5], piece, "s")


def test_the_probe_accepts_raw_probabilities_and_refuses_constrained_ones():
    # the unconstrained request: greedy " nurse" at -0.3, " doctor" at -1.9; the probe forces " The", " doctor"
    assert check_forced(-1.9, -0.3, openai_shape([" The", " doctor"], [-0.1, -1.95]), [5, 9], piece) is None
    renormalised = check_forced(-1.9, -0.3, openai_shape([" The", " doctor"], [0.0, 0.0]), [5, 9], piece)
    assert renormalised and "after the grammar" in renormalised
    ignored = check_forced(-1.9, -0.3, openai_shape([" The", " nurse"], [-0.1, -0.3]), [5, 9], piece)
    assert ignored and "did not generate" in ignored


def test_alternatives_of_the_first_generated_token_from_either_shape():
    assert first_alternatives(openai_shape([" The"], [-0.1], [{" The": -0.1, " A": -2.5}]), "s") == {" The": -0.1, " A": -2.5}
    assert first_alternatives(llama_server_shape([(5, -0.1)]), "s") == {" The": -0.1}


def test_score_by_is_checked_as_a_backend_option():
    from audit.backends.base import BackendOptions
    from audit.backends.openai_options import _settings
    from audit.errors import ConfigError

    assert _settings(BackendOptions(extra={"tokenizer": "t", "score_by": "echo"}))["score_by"] == "echo"
    with pytest.raises(ConfigError, match=r"^--backend-option score_by=fast: expected one of auto, forced, echo$"):
        _settings(BackendOptions(extra={"tokenizer": "t", "score_by": "fast"}))
