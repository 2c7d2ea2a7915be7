"""Scoring a continuation without echo: the server is made to generate it, and reports what it cost.

``log P(continuation | context)`` is the sum of the log-probabilities of the continuation's tokens
under the model's raw next-token distributions. Instead of echoing ``context + continuation`` (one
log-probability per prompt token, which llama.cpp's ``llama-server`` refuses and llama-cpp-python's
server formats in Python at ~30 ms a token), the backend sends the context alone with a grammar
that allows exactly the continuation's text (llama.cpp's GBNF ``grammar`` field, both servers) and
``max_tokens`` = its token count. Greedy decoding under that grammar generates the continuation;
each generated token comes with its log-probability *before* the grammar (llama.cpp's default
``post_sampling_probs: false``; llama-cpp-python reads its raw logits). The start-up probe checks
exactly that on a non-greedy token (``check_forced``): a server that ignores the grammar generates
another token, one that reports the constrained distribution gives it log-probability 0.

A grammar constrains text, not tokens: greedy decoding may spell the continuation with other
tokens than ours (``' salesperson'`` as ``' '``, ``'s'``, ...). Every generated token is compared
with ours (by id where the server sends ids, else by its exact text); a request that came back
spelt otherwise is scored again another way by the backend (echo, or one forced token at a time
with ``logit_bias`` where the server takes token-id prompts), never with the wrong tokens.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from .openai_wire import ALIGN_TOLERANCE, ServerError, _logprob_of, shown

FORCE_BIAS = 100.0  # logit_bias that makes one token the greedy choice (llama.cpp adds it to the logit)


def gbnf_literal(text: str) -> str:
    """A GBNF grammar whose only sentence is ``text`` (quotes, backslashes and control characters escaped)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return 'root ::= "' + "".join(out) + '"'


def forced_body(model: str, prompt: Any, text: str, n_tokens: int, *, alternatives: int = 1,
                extra: dict | None = None) -> dict:
    """A ``/v1/completions`` request that generates exactly ``text`` (at most ``n_tokens`` tokens) after ``prompt``."""
    body = {"model": model, "prompt": prompt, "max_tokens": n_tokens, "temperature": 0, "echo": False, "seed": 1234,
            "logprobs": alternatives, "grammar": gbnf_literal(text)}
    body.update(extra or {})
    return body


def biased_body(model: str, prompt: Any, token_id: int, *, extra: dict | None = None) -> dict:
    """One token, ``token_id``, made the greedy choice by ``logit_bias`` (llama-server: token-id prompts)."""
    body = {"model": model, "prompt": prompt, "max_tokens": 1, "temperature": 0, "echo": False, "seed": 1234,
            "logprobs": 1, "logit_bias": [[token_id, FORCE_BIAS]]}
    body.update(extra or {})
    return body


def generated_tokens(choice: dict, where: str) -> list[tuple[str, int | None, float | None]]:
    """(text, id or None, log-probability) of each generated token, from either shape servers send:
    OpenAI's ``logprobs.tokens`` / ``token_logprobs`` or llama-server's ``logprobs.content[i]``."""
    lp = choice.get("logprobs")
    if not isinstance(lp, dict):
        return []
    content = lp.get("content")
    if isinstance(content, list):
        out = []
        for entry in content:
            if not isinstance(entry, dict) or not isinstance(entry.get("token"), str):
                raise ServerError(f"{where}: a generated token is not an object with a text (got {shown(entry)})")
            tid = entry.get("id")
            out.append((entry["token"], tid if isinstance(tid, int) and not isinstance(tid, bool) else None,
                        _logprob_of(entry, where)))
        return out
    tokens, values = lp.get("tokens"), lp.get("token_logprobs")
    if not isinstance(tokens, list) or not isinstance(values, list) or len(tokens) != len(values):
        return []
    if not all(isinstance(t, str) for t in tokens):
        raise ServerError(f"{where}: a generated token is not a string (got {shown(tokens)})")
    return [(t, None, _logprob_of(v, where)) for t, v in zip(tokens, values)]


def first_alternatives(choice: dict, where: str) -> dict[str, float]:
    """The first generated position's alternatives as {text: log-probability} (both shapes)."""
    lp = choice.get("logprobs")
    if not isinstance(lp, dict):
        return {}
    content = lp.get("content")
    if isinstance(content, list):
        top = content[0].get("top_logprobs") if content and isinstance(content[0], dict) else None
        pairs = [(e.get("token"), _logprob_of(e, where)) for e in top or [] if isinstance(e, dict)]
    else:
        tops = lp.get("top_logprobs")
        top = tops[0] if isinstance(tops, list) and tops else None
        pairs = [(k, _logprob_of(v, where)) for k, v in top.items()] if isinstance(top, dict) else []
    return {t: v for t, v in pairs if isinstance(t, str) and v is not None and math.isfinite(v)}


def forced_logprob(choice: dict, cont: Sequence[int], piece: Callable[[int], str], where: str) -> float | None:
    """Sum of the generated tokens' log-probabilities when they are exactly ``cont``; None when the server
    spelt the text with other tokens (or stopped early), which the caller scores another way."""
    got = generated_tokens(choice, where)
    if len(got) != len(cont):
        return None
    total = 0.0
    for (text, tid, value), ours in zip(got, cont):
        if (tid is not None and tid != ours) or (tid is None and text != piece(ours)):
            return None
        if value is None or not math.isfinite(value):
            raise ServerError(f"{where}: no finite log-probability for forced token {piece(ours)!r}")
        total += value
    return total


def check_forced(expected: float, choice: dict, token_id: int, piece: Callable[[int], str]) -> str | None:
    """Why forced scoring cannot be used (None where it can): the probe forced a non-greedy token whose
    log-probability ``expected`` the server reported among the unconstrained alternatives."""
    got = forced_logprob(choice, [token_id], piece, "probe")
    if got is None:
        return f"the server did not follow the grammar (asked for {piece(token_id)!r}, it generated " \
               f"{shown([t for t, _, _ in generated_tokens(choice, 'probe')])})"
    if abs(got - expected) > ALIGN_TOLERANCE:
        return f"a forced token's log-probability is {got:.4f} where the unconstrained distribution gives " \
               f"{expected:.4f} (the server reports probabilities after the grammar)"
    return None


class ForcedScoring:
    """The backend's forced-scoring requests (mixed into ``OpenAICompletionsBackend``, which supplies
    ``model_name``, ``token_ids``, ``extra_body``, ``_piece``, ``_gather``, ``_check_usage`` and the echo path)."""

    async def _probe_forced(self, client, prompts: Sequence[str]) -> str | None:
        """None where forced scoring gives the raw distribution's log-probabilities, else why not (one line)."""
        from .openai_wire import choices_in_order

        for text in prompts:
            wire = self._encode_prompt(text)
            resp = await self._probe_request(client, wire, echo=False, logprobs=5)
            choice = choices_in_order(resp, 1, self.where)[0]
            got = generated_tokens(choice, self.where)
            if not got:
                continue
            self._check_greedy(got[0][0], got[0][2] if got[0][2] is not None else math.nan)
            self._learn_server_bos(resp, wire[0])
            for alt, expected in sorted(first_alternatives(choice, self.where).items(), key=lambda kv: -kv[1]):
                ids = self.tokenizer(alt, add_special_tokens=False)["input_ids"]
                if alt == got[0][0] or len(ids) != 1 or self._piece(ids[0]) != alt:
                    continue  # the greedy token itself, or not one token of ours
                prompt = wire[0] if self.token_ids else wire[1]
                try:
                    forced = await client.post("/completions", forced_body(self.model_name, prompt, alt, 1,
                                                                           extra=self.extra_body), retry=False)
                except ServerError as exc:
                    return f"the server refused a grammar ({exc})"
                return check_forced(expected, choices_in_order(forced, 1, self.where)[0], ids[0], self._piece)
        return "the server returned no alternatives to a generated token (logprobs)"

    async def _score_forced(self, client, jobs: list[tuple]) -> list[float]:
        """One request per job (its own grammar); jobs the server spelt with other tokens are scored again."""
        from .openai_wire import choices_in_order

        async def one(batch):
            ctx, cont, text, n_ctx_text = batch[0]
            if not cont:
                return [0.0]
            prompt = list(ctx) if self.token_ids else text[:n_ctx_text]
            resp = await client.post("/completions", forced_body(self.model_name, prompt, text[n_ctx_text:], len(cont),
                                                                 extra=self.extra_body))
            self._check_usage(resp, [list(ctx)])
            return [forced_logprob(choices_in_order(resp, 1, self.where)[0], cont, self._piece, self.where)]

        scores = await self._gather([[job] for job in jobs], one)
        respelt = [job for job, score in zip(jobs, scores) if score is None]
        if respelt:
            self.tuning["forced_respelt"] += len(respelt)
            again = dict(zip(respelt, await self._score_again(client, respelt)))
            scores = [again[job] if score is None else score for job, score in zip(jobs, scores)]
        return scores

    async def _score_again(self, client, jobs: list[tuple]) -> list[float]:
        """Echo where the server's echo passed the probe; else one ``logit_bias``-forced token per request."""
        from .openai_wire import choices_in_order

        if self.echo_ok:
            return await self._score_echo(client, jobs)
        if not self.token_ids:
            raise ServerError(f"{self.where}: the server spelt a forced continuation with other tokens than ours and "
                              f"neither echo nor token-id prompts are usable to score it exactly ({self.tuning['echo_refused']})")

        async def one(batch):
            ctx, cont = list(batch[0][0]), list(batch[0][1])
            total = 0.0
            for i, token in enumerate(cont):
                resp = await client.post("/completions", biased_body(self.model_name, ctx + cont[:i], token,
                                                                     extra=self.extra_body))
                value = forced_logprob(choices_in_order(resp, 1, self.where)[0], [token], self._piece, self.where)
                if value is None:
                    raise ServerError(f"{self.where}: the server did not generate the token that logit_bias forced "
                                      f"({self._piece(token)!r})")
                total += value
            return [total]

        return await self._gather([[job] for job in jobs], one)
