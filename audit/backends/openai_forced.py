"""Scoring a continuation without echo: the server is made to generate it, and reports what it cost.

``log P(continuation | context)`` is the sum of the log-probabilities of the continuation's tokens
under the model's raw next-token distributions. Instead of echoing ``context + continuation`` (one
log-probability per prompt token, which llama.cpp's ``llama-server`` refuses and llama-cpp-python's
server formats in Python at ~30 ms a token), the backend sends the context and a grammar that
allows exactly our tokens, by id (llama.cpp's GBNF ``<[id]>``, both llama.cpp servers), with
``max_tokens`` = their count. Greedy decoding under that grammar generates them; each comes with
its log-probability *before* the grammar (llama.cpp's default ``post_sampling_probs: false``;
llama-cpp-python reads its raw logits). The start-up probe checks exactly that on a non-greedy
token (``check_forced``): a server that ignores the grammar generates another token, one that
reports the constrained distribution gives it log-probability 0.

Every score comes from one token at a time (llama.cpp's decode path), never from a batch of prompt
tokens: the context's last token is sent as the first forced token (its own log-probability is not
used), so the logits that score the continuation are always computed the same way; the cached
context's keys and values still come from whatever batches computed them (0.014 nats measured
between orders on the Q4_1 test model, against 1e-5 for echo). llama.cpp's batched and one-token
kernels differ (up to 0.13 nats for one token on that model): scoring by echo gives prefill numbers,
by forcing decode numbers; ``identity()`` records which (``scored_by``); ``score_by=echo`` keeps echo.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from .openai_wire import ServerError, _logprob_of, choices_in_order, shown

# nats: the probe compares a forced token's log-probability (decode path) with the unconstrained request's
# (prefill path); they differ by kernel rounding (0.13 measured), never by the whole nats that a wrong
# position or a renormalised distribution gives
PROBE_TOLERANCE = 0.5


def token_grammar(ids: Sequence[int]) -> str:
    """A GBNF grammar whose only sentence is these tokens, by id."""
    return "root ::= " + " ".join(f"<[{int(i)}]>" for i in ids)


def forced_body(model: str, prompt: Any, ids: Sequence[int], *, alternatives: int = 1, extra: dict | None = None) -> dict:
    """A ``/v1/completions`` request that generates exactly the tokens ``ids`` after ``prompt``."""
    body = {"model": model, "prompt": prompt, "max_tokens": len(ids), "temperature": 0, "echo": False, "seed": 1234,
            "logprobs": alternatives, "grammar": token_grammar(ids)}
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


def forced_logprobs(choice: dict, ids: Sequence[int], piece: Callable[[int], str], where: str) -> list[float]:
    """The log-probability of each forced token; refused (one line) where the server generated others."""
    got = generated_tokens(choice, where)
    same = len(got) == len(ids) and all((tid == ours) if tid is not None else (text == piece(ours))
                                        for (text, tid, _), ours in zip(got, ids))
    if not same:
        raise ServerError(f"{where}: the server did not generate the tokens its grammar allowed (asked for "
                          f"{shown([piece(i) for i in ids])}, got {shown([t for t, _, _ in got])})")
    out = []
    for (_, _, value), ours in zip(got, ids):
        if value is None or not math.isfinite(value):
            raise ServerError(f"{where}: no finite log-probability for forced token {piece(ours)!r}")
        out.append(value)
    return out


def check_forced(expected: float, greedy: float, choice: dict, ids: Sequence[int], piece: Callable[[int], str]) -> str | None:
    """Why forced scoring cannot be used (None where it can). The probe forced a non-greedy token (the last of
    ``ids``) whose log-probability the unconstrained request reported as ``expected``, below the greedy one's."""
    try:
        got = forced_logprobs(choice, ids, piece, "probe")[-1]
    except ServerError as exc:
        return str(exc).removeprefix("probe: ")
    if abs(got - expected) > PROBE_TOLERANCE or got >= greedy:
        return f"a forced token's log-probability is {got:.4f} where the unconstrained distribution gives " \
               f"{expected:.4f} (greedy {greedy:.4f}): the server reports probabilities after the grammar"
    return None


class ForcedScoring:
    """The backend's forced-scoring requests (mixed into ``OpenAICompletionsBackend``, which supplies
    ``model_name``, ``token_ids``, ``extra_body``, ``_piece``, ``_gather`` and ``_check_usage``)."""

    def _forced_request(self, ctx: Sequence[int], cont: Sequence[int], ctx_text: str, alternatives: int = 1) -> tuple:
        """(body, prompt ids, tokens forced): the context's last token is forced too where its text can be cut off
        the prompt, so that the continuation is always scored one token at a time."""
        ctx = list(ctx)
        last = self._piece(ctx[-1]) if len(ctx) > 1 else ""
        if last and (self.token_ids or ctx_text.endswith(last)):
            prompt_ids, forced, text = ctx[:-1], ctx[-1:] + list(cont), ctx_text[: len(ctx_text) - len(last)]
        else:
            prompt_ids, forced, text = ctx, list(cont), ctx_text
        body = forced_body(self.model_name, prompt_ids if self.token_ids else text, forced, alternatives=alternatives,
                           extra=self.extra_body)
        return body, prompt_ids, forced

    async def _probe_forced(self, client, prompts: Sequence[str]) -> str | None:
        """None where forced scoring gives the raw distribution's log-probabilities, else why not (one line)."""
        for text in prompts:
            wire = self._encode_prompt(text)
            resp = await self._probe_request(client, wire, echo=False, logprobs=5)
            choice = choices_in_order(resp, 1, self.where)[0]
            got = generated_tokens(choice, self.where)
            if not got or got[0][2] is None:
                continue
            self._check_greedy(got[0][0], got[0][2])
            self._learn_server_bos(resp, wire[0])
            for alt, expected in sorted(first_alternatives(choice, self.where).items(), key=lambda kv: -kv[1]):
                ids = self.tokenizer(alt, add_special_tokens=False)["input_ids"]
                if alt == got[0][0] or len(ids) != 1 or self._piece(ids[0]) != alt:
                    continue  # the greedy token itself, or not one token of ours
                body, _, forced = self._forced_request(wire[0], ids, wire[1])
                try:
                    answer = await client.post("/completions", body, retry=False)
                except ServerError as exc:
                    return f"the server refused a grammar ({exc})"
                return check_forced(expected, got[0][2], choices_in_order(answer, 1, self.where)[0], forced, self._piece)
        return "the server returned no alternatives to a generated token (logprobs)"

    async def _score_forced(self, client, jobs: list[tuple]) -> list[float]:
        """One request per job (each has its own grammar), in the order given (prefix order: the cache stays warm)."""
        async def one(batch):
            ctx, cont, text, n_ctx_text = batch[0]
            if not cont:
                return [0.0]
            body, prompt_ids, forced = self._forced_request(ctx, cont, text[:n_ctx_text])
            resp = await client.post("/completions", body)
            self._check_usage(resp, [prompt_ids])
            values = forced_logprobs(choices_in_order(resp, 1, self.where)[0], forced, self._piece, self.where)
            return [sum(values[len(forced) - len(cont):])]

        return await self._gather([[job] for job in jobs], one)
