"""The wire format of OpenAI-compatible ``/v1/completions`` servers, as pure functions.

A prompt's log-probabilities come back in one of two shapes:

- OpenAI's (lm-eval's ``local-completions``): ``echo: true`` with ``logprobs: k`` returns
  ``choices[i].logprobs.tokens`` / ``token_logprobs`` for the echoed prompt followed by the
  generated tokens; the first entry's log-probability is ``null``. llama-cpp-python's server
  drops a leading BOS from the echo (and skips any BOS inside it).
- vLLM's ``prompt_logprobs``: ``choices[i].prompt_logprobs``, one entry per prompt token (BOS
  included), ``null`` first, each a dict keyed by token id (JSON string) holding
  ``{"logprob": x, ...}`` for the prompt token and the top alternatives.

A continuation is located by token counts, never as "all but the last entry" (the number of
generated entries is 0 with vLLM's ``max_tokens: 0`` and with a server that stopped at EOS), and
every echoed token is checked against ours: a server that tokenised the prompt differently is
refused with one line naming it and the first difference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence
from urllib.parse import urlsplit, urlunsplit

from audit.errors import AuditError


MAX_LINE = 500  # characters of an error line, whatever the server sent


class ServerError(AuditError):
    """The server cannot be audited, or answered something we cannot use: one line of at most
    ``MAX_LINE`` characters, exit code 2."""

    def __init__(self, message: str):
        line = " ".join(str(message).split())
        super().__init__(line if len(line) <= MAX_LINE else line[: MAX_LINE - 3] + "...")


def strip_credentials(url: str) -> str:
    """``url`` without user:password and without a query string (keys are sometimes passed there)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


MAX_SHOWN = 80  # characters of a server's value quoted in an error line


def shown(value: Any) -> str:
    """A server's value as quoted in a one-line error: repr, cut to ``MAX_SHOWN`` characters."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else f"{text[:MAX_SHOWN]}... ({len(text)} characters)"


@dataclass(frozen=True)
class Echo:
    """A prompt's echoed tokens and log-probabilities (``None`` where the server gives none)."""

    tokens: list  # token strings (OpenAI shape) or token ids (vLLM's prompt_logprobs)
    logprobs: list[float | None]
    by_id: bool  # tokens are ids, not strings
    every_token: bool = False  # one entry per prompt token, BOS included (vLLM's prompt_logprobs)


def completion_body(model: str, prompt: Any, *, max_tokens: int, echo: bool, logprobs: int | None,
                    extra: dict | None = None) -> dict:
    """A ``/v1/completions`` request as lm-eval's local-completions sends it (greedy, no sampling)."""
    body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "echo": echo, "seed": 1234}
    if logprobs is not None:
        body["logprobs"] = logprobs
    body.update(extra or {})
    return body


def choices_in_order(response: Any, expected: int, where: str) -> list[dict]:
    """``response["choices"]`` sorted by index, checked to answer each of ``expected`` prompts once."""
    choices = response.get("choices") if isinstance(response, dict) else None
    if not isinstance(choices, list) or len(choices) != expected:
        got = len(choices) if isinstance(choices, list) else "no"
        raise ServerError(f"{where}: expected {expected} completion choice(s), got {got}")
    if not all(isinstance(c, dict) for c in choices):
        raise ServerError(f"{where}: a completion choice is not a JSON object")
    indexes = [c.get("index", i) for i, c in enumerate(choices)]
    if any(not isinstance(x, int) or isinstance(x, bool) for x in indexes) or sorted(indexes) != list(range(expected)):
        raise ServerError(f"{where}: completion choices are not indexed 0..{expected - 1} (got {shown(indexes)})")
    return [c for _, c in sorted(zip(indexes, choices), key=lambda pair: pair[0])]


LOGPROB_SLACK = 1e-4  # nats: a log-probability above this is not one (rounding gives at most a few 1e-6)


def _logprob_of(entry: Any, where: str) -> float | None:
    """A log-probability as the server gave it: None where it gives none; refused when it cannot be one."""
    value = entry.get("logprob") if isinstance(entry, dict) else entry
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ServerError(f"{where}: a log-probability is not a number (got {shown(value)})")
    value = float(value)
    if value > LOGPROB_SLACK:  # NaN and -inf pass here and are refused where a continuation needs them
        raise ServerError(f"{where}: the server returned a log-probability of {value:.6g} > 0, which no probability has "
                          "(does it return logits, or add an offset?); refusing to audit")
    return value


def _token_id(raw: Any, where: str) -> int:
    text = str(raw).strip()
    if not text.lstrip("-").isdigit() or len(text) > 12:
        raise ServerError(f"{where}: a token id is not an integer (got {shown(raw)})")
    return int(text)


def parse_echo(choice: dict, where: str) -> Echo:
    """The echoed prompt of one choice, from vLLM's ``prompt_logprobs`` when present, else ``logprobs``."""
    plp = choice.get("prompt_logprobs")
    if isinstance(plp, list) and plp:
        # entry j: {token id: logprob} for prompt token j and the top alternatives (None for token 0)
        if not all(entry is None or isinstance(entry, dict) for entry in plp):
            raise ServerError(f"{where}: prompt_logprobs entries must be objects keyed by token id")
        ids = [{_token_id(k, where): _logprob_of(v, where) for k, v in entry.items()} if entry else None for entry in plp]
        return Echo(tokens=ids, logprobs=[None] * len(ids), by_id=True, every_token=True)
    lp = choice.get("logprobs")
    if not isinstance(lp, dict) or not isinstance(lp.get("tokens"), list):
        raise ServerError(f"{where}: the response has no log-probabilities (does the server support logprobs?)")
    tokens, values = lp["tokens"], lp.get("token_logprobs") or []
    if not isinstance(values, list) or len(values) != len(tokens):
        got = len(values) if isinstance(values, list) else shown(values)
        raise ServerError(f"{where}: {len(tokens)} tokens but {got} token_logprobs")
    logprobs = [_logprob_of(v, where) for v in values]
    if tokens and all(isinstance(t, str) and t.startswith("token_id:") for t in tokens):  # vLLM --return-tokens-as-token-ids
        return Echo([_token_id(t.split(":", 1)[1], where) for t in tokens], logprobs, by_id=True)
    return Echo(list(tokens), logprobs, by_id=False)


def _norm(piece: str) -> str:
    """Token text compared across tokenizers: no replacement characters, no surrounding whitespace."""
    return piece.replace("\ufffd", "").strip()


def _matches(echo: Echo, i: int, token_id: int, piece: Callable[[int], str]) -> bool:
    got = echo.tokens[i]
    if echo.by_id:
        if isinstance(got, dict):  # vLLM prompt_logprobs: our token must be among the keys
            return token_id in got
        return got == token_id or (got is None and i == 0)  # vLLM gives nothing for the first token
    return isinstance(got, str) and _norm(got) == _norm(piece(token_id))


def _entry_logprob(echo: Echo, i: int, token_id: int) -> float | None:
    got = echo.tokens[i]
    if isinstance(got, dict):
        return got.get(token_id)
    return echo.logprobs[i]


def locate_prompt(echo: Echo, ids: Sequence[int], bos_id: int | None, piece: Callable[[int], str],
                  where: str) -> int:
    """Where our token ``ids[s]`` sits in the echo: ``-s``, with s = 1 when the server dropped our leading BOS.

    Every echoed prompt token must match ours; entries after the prompt are generated ones.
    """
    dropped_bos = not echo.every_token and ids and bos_id is not None and ids[0] == bos_id
    starts = [0, 1] if dropped_bos else [0]
    if len(echo.tokens) < len(ids) - starts[-1]:
        if len(echo.tokens) <= 2:
            raise ServerError(f"{where}: this server does not return prompt log-probabilities "
                              f"(got {len(echo.tokens)} entries for a {len(ids)}-token prompt; it ignores echo)")
        raise ServerError(f"{where}: the server echoed {len(echo.tokens)} tokens for our {len(ids)}-token prompt")
    best = (-1, 0)  # (first differing token of ours, shift) of the start that matched longest
    for s in starts:
        bad = next((j for j in range(s, len(ids)) if not _matches(echo, j - s, ids[j], piece)), None)
        if bad is None:
            return -s
        best = max(best, (bad, s))
    j, s = best
    got = echo.tokens[j - s]
    if isinstance(got, dict):
        got = sorted(got)[:3]
    raise ServerError(f"{where}: the server's tokens differ from ours at prompt token {j}: "
                      f"server {shown(got)}, ours {ids[j]} {piece(ids[j])!r} (wrong tokenizer, or BOS handling differs)")


def continuation_logprob(echo: Echo, ctx: Sequence[int], cont: Sequence[int], bos_id: int | None,
                         piece: Callable[[int], str], where: str) -> float:
    """Sum of the echoed log-probabilities of ``cont`` after ``ctx``, located by token counts."""
    ids = list(ctx) + list(cont)
    shift = locate_prompt(echo, ids, bos_id, piece, where)
    total = 0.0
    for j in range(len(ctx), len(ids)):
        value = _entry_logprob(echo, j + shift, ids[j])
        if value is None or not math.isfinite(value):
            raise ServerError(f"{where}: no finite log-probability for continuation token {j} ({piece(ids[j])!r})")
        total += value
    return total


def generated_entry(choice: dict, where: str) -> tuple[str, float]:
    """The first generated token and its log-probability from a non-echo request (``logprobs: 1``)."""
    lp = choice.get("logprobs")
    tokens = lp.get("tokens") if isinstance(lp, dict) else None
    values = lp.get("token_logprobs") if isinstance(lp, dict) else None
    if not isinstance(tokens, list) or not isinstance(values, list) or not tokens or not values \
            or _logprob_of(values[0], where) is None:
        raise ServerError(f"{where}: the server returned no log-probability for a generated token")
    if not isinstance(tokens[0], str):
        raise ServerError(f"{where}: a generated token is not a string (got {shown(tokens[0])})")
    return tokens[0], float(values[0])


def generated_text(choice: dict, where: str) -> str:
    """A generation's text; a missing or null text is an empty generation, any other non-string is refused."""
    text = choice.get("text")
    if text is None:
        return ""
    if not isinstance(text, str):
        raise ServerError(f"{where}: a generation's text is not a string (got {shown(text)})")
    return text


ALIGN_TOLERANCE = 0.05  # nats: the same position scored in a batch of 1 or n may differ by float noise


def check_alignment(generated_logprob: float, echo: Echo, ids: Sequence[int], bos_id: int | None,
                    piece: Callable[[int], str], where: str) -> None:
    """Refuse a server whose prompt log-probabilities are not where its echoed tokens say they are.

    The probe asked the server (no echo) for the greedy next token ``g`` after a prompt ``P``
    and got its log-probability; ``ids`` is ``P + [g]`` and ``echo`` its echoed prompt. The
    echoed entry of ``g`` must carry that same log-probability; a server that scores one position
    off (llama-cpp-python without a leading BOS) reports another position's distribution there.
    """
    shift = locate_prompt(echo, ids, bos_id, piece, where)
    last = len(ids) - 1 + shift
    at_g = _entry_logprob(echo, last, ids[-1])
    if at_g is not None and abs(at_g - generated_logprob) <= ALIGN_TOLERANCE:
        return
    if bos_id is None or ids[0] != bos_id:
        raise ServerError(f"{where}: the server's prompt log-probabilities are misplaced against its tokens "
                          f"(token {piece(ids[-1])!r}: {generated_logprob:.4f} generated, {at_g} echoed); "
                          "llama-cpp-python's server scores one position off when the prompt does not start "
                          "with BOS: add BOS (add_bos=True), or use another server")
    raise ServerError(f"{where}: the server's prompt log-probabilities do not match its own generation "
                      f"(token {piece(ids[-1])!r}: {generated_logprob:.4f} generated, {at_g} echoed); refusing to audit")
