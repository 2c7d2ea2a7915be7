"""Tokenisation of log-likelihood requests exactly as lm-evaluation-harness does it (``HFLM`` with its
defaults): trailing spaces of the context move to the continuation; the context is encoded alone, the
pair is encoded whole, and the continuation is what the whole adds beyond the context's length; the
tokenizer's own special tokens are added (e.g. a Llama BOS) unless the text already starts with the
BOS/EOS string; an empty context conditions on the BOS (else EOS) token. So our numbers are comparable
with theirs, and every backend that tokenises locally (the server backend too) uses these functions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from audit.backends.base import Request

DEFAULT_MAX_LENGTH = 2048  # lm-eval's fallback context length


def _prefix_token_id(tokenizer) -> int | None:
    """lm-eval's ``HFLM.prefix_token_id``: what an empty context conditions on."""
    return tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id


def _special_kwargs(tokenizer, text: str) -> dict:
    """lm-eval's ``HFLM.tok_encode``: the tokenizer's default special tokens, none if the text starts with BOS."""
    pid = _prefix_token_id(tokenizer)
    if pid is not None:
        marker = tokenizer.decode([pid])
        if marker and text.startswith(marker):
            return {"add_special_tokens": False}
    return {}


_ENCODE_CHUNK = 256  # texts per tokenizer call: its per-token objects (offsets, masks) live for one chunk only


def _encode_many(tokenizer, texts: Sequence[str], *, plain: bool = False) -> list[list[int]]:
    """``tok_encode`` of each text, batched per special-token setting (same ids as one call each), in chunks
    so that memory holds the ids, not the tokenizer's per-token encodings of every text at once.
    ``plain``: no special tokens for any text (the rest of a text after a shared head)."""
    out: list[list[int]] = [[] for _ in texts]
    buckets: dict[bool, list[int]] = {}
    for i, text in enumerate(texts):
        buckets.setdefault(plain or bool(_special_kwargs(tokenizer, text)), []).append(i)
    for plain, idx in buckets.items():
        kw = {"add_special_tokens": False} if plain else {}
        for start in range(0, len(idx), _ENCODE_CHUNK):
            part = idx[start : start + _ENCODE_CHUNK]
            ids = tokenizer([texts[i] for i in part], return_attention_mask=False, return_token_type_ids=False, **kw)["input_ids"]
            for i, row in zip(part, ids):
                out[i] = list(row)
    return out


def _split_spaces(context: str, continuation: str) -> tuple[str, str]:
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces > 0:
        return context[:-n_spaces], context[-n_spaces:] + continuation
    return context, continuation


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-eval's ``TemplateLM._encode_pair`` for a causal model: (context tokens, continuation tokens)."""
    context, continuation = _split_spaces(context, continuation)
    whole, ctx = _encode_many(tokenizer, [context + continuation, context])
    return ctx, whole[len(ctx) :]


def request_tokens(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-eval's ``TemplateLM.loglikelihood`` tokenisation of one request, empty context included."""
    pid = _prefix_token_id(tokenizer)
    if context == "":
        cont = tokenizer(continuation, add_special_tokens=False)["input_ids"]
        return (cont[:1], cont[1:]) if cont and cont[0] == pid else ([pid], cont)
    ctx, cont = encode_pair(tokenizer, context, continuation)
    return (ctx or [pid]), cont  # a context of spaces only: lm-eval would fail; condition on BOS/EOS


def _encode_with_prefixes(tokenizer, prefix_of: dict[str, str]) -> dict[str, list[int]]:
    """``tok_encode`` of each text (the keys), where a text opening with its shared prefix (the value) is,
    when the tokenizer provably allows it (``prefix_split``), the prefix's head's ids once plus its rest's."""
    from audit.backends.hf import prefix_split

    groups: dict[str, list[str]] = {}
    whole: list[str] = []
    if prefix_split.splittable(tokenizer):
        heads = {p: p[: prefix_split.split_at(tokenizer, p)] for p in set(prefix_of.values()) if p}
        for text, prefix in prefix_of.items():
            head = heads.get(prefix, "")
            if head and len(text) > len(head) and text.startswith(head):
                groups.setdefault(head, []).append(text)
            else:
                whole.append(text)
    else:
        whole = list(prefix_of)
    ids = dict(zip(whole, _encode_many(tokenizer, whole)))
    for head, texts in groups.items():
        head_ids, guard = _encode_many(tokenizer, [head, texts[0]])
        rests = _encode_many(tokenizer, [t[len(head) :] for t in texts], plain=True)
        if head_ids + rests[0] != guard or _special_kwargs(tokenizer, head) != _special_kwargs(tokenizer, texts[0]):
            prefix_split.distrust(tokenizer)  # a pipeline the proof misreads: encode whole, now and from now on
            ids.update(zip(texts, _encode_many(tokenizer, texts)))
            continue
        ids.update((text, head_ids + rest) for text, rest in zip(texts, rests))
    return ids


def tokenize_requests(tokenizer, requests: Sequence[Request]) -> list[tuple[list[int], list[int]]]:
    """``request_tokens`` for many requests, with unique strings encoded once in batched calls, and a
    shared prefix's head encoded once where the tokenizer provably allows it (``prefix_split``)."""
    pairs = [_split_spaces(r.context, r.continuation) for r in requests]
    prefix_of: dict[str, str] = {}
    for (c, k), r in zip(pairs, requests):
        if r.context != "":
            prefix_of.setdefault(c, r.prefix)
            prefix_of.setdefault(c + k, r.prefix)
    ids = _encode_with_prefixes(tokenizer, prefix_of)
    pid = _prefix_token_id(tokenizer)
    out = []
    for r, (c, k) in zip(requests, pairs):
        if r.context == "":
            out.append(request_tokens(tokenizer, "", r.continuation))
            continue
        ctx = ids[c]
        out.append(((ctx or [pid]), ids[c + k][len(ctx) :]))
    return out


def max_length(model, tokenizer) -> int:
    """lm-eval's ``resolve_max_length``: the model's context length."""
    configs = [getattr(model.config, "text_config", None), model.config]
    for cfg in configs:
        for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
            value = getattr(cfg, attr, None) if cfg is not None else None
            if isinstance(value, int) and value > 0:
                return value
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 10**12:
        return limit
    return DEFAULT_MAX_LENGTH
