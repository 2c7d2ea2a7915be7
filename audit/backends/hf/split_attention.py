"""Attention to a shared prefix held once: a decoding batch's rows attend to the prefix's keys/values (batch 1,
one copy for all rows) and to their own columns (``decoding.DecodingSlots``), with one softmax over both.

The scores against the prefix are one matrix product of every row's queries with the single copy of the prefix's
keys (no per-row copy, no concatenation); the scores against a row's own columns are masked as usual; the two
sets of scores share one softmax (float32), and the output is the probability-weighted sum of the prefix's values
plus that of the row's own values. So a slot needs no columns for the prefix, and the same key/value memory holds
more rows.

Used through ``shared_prefix(model, prefix_kv)``: for the forward passes inside it, the model's attention layers
dispatch (by ``config._attn_implementation``, transformers' attention interface) to ``_split_attention``, which
reads the layer's prefix from the active context. Settings this path does not implement (attention sinks,
dropout) fall back to the model's own kernel on the concatenated keys/values."""

from __future__ import annotations

from contextlib import contextmanager

import torch

NAME = "audit_shared_prefix"
_active: list[dict] = []  # the innermost context: {"prefix": [(keys, values) per layer], "kernel": name}


def _concatenated(module, query, key, value, mask, kernel: str, prefix, **kwargs):
    """The model's own kernel on prefix + own columns (the prefix expanded over the rows, every column seen)."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    pk, pv = prefix
    n, m = key.shape[0], pk.shape[-2]
    key = torch.cat([pk.expand(n, -1, -1, -1), key], dim=-2)
    value = torch.cat([pv.expand(n, -1, -1, -1), value], dim=-2)
    if mask is not None:
        seen = torch.ones(*mask.shape[:-1], m, dtype=torch.bool, device=mask.device)
        mask = torch.cat([seen if mask.dtype == torch.bool else torch.zeros_like(seen, dtype=mask.dtype), mask], dim=-1)
        if kernel == "eager" and mask.dtype == torch.bool:  # eager adds its mask to the scores
            mask = torch.zeros(mask.shape, dtype=query.dtype, device=mask.device).masked_fill_(~mask, torch.finfo(query.dtype).min)
    fn = ALL_ATTENTION_FUNCTIONS.get_interface(kernel, None)
    if fn is None:  # eager: the model module's own function
        import importlib

        fn = importlib.import_module(type(module).__module__).eager_attention_forward
    return fn(module, query, key, value, mask, **kwargs)


def _with_shared(q: torch.Tensor, shared: torch.Tensor) -> torch.Tensor:
    """``q @ shared`` for ``q`` (rows, kv heads, r, x) and ``shared`` (1, kv heads, x, y): one product per kv head
    over all rows' queries (rows, kv heads, r, y)."""
    n, h, r, x = q.shape
    out = torch.matmul(q.transpose(0, 1).reshape(h, n * r, x), shared[0])
    return out.view(h, n, r, -1).transpose(0, 1)


def _split_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, softcap=None, **kwargs):
    """Attention of ``query`` (rows, heads, L, d) to the active prefix of ``module.layer_idx`` and to the rows' own
    ``key``/``value`` (rows, kv heads, w, d) under ``attention_mask`` (rows, 1, L, w; boolean, True = seen, or
    additive). Returns (rows, L, heads, d), as transformers' kernels do."""
    state = _active[-1]
    prefix = tuple(t.to(query.device) for t in state["prefix"][module.layer_idx])  # a no-op but under a device map
    if dropout or kwargs.get("sinks") is not None or kwargs.get("s_aux") is not None:
        return _concatenated(module, query, key, value, attention_mask, state["kernel"], prefix, scaling=scaling,
                             dropout=dropout, softcap=softcap, **kwargs)
    pk, pv = prefix
    n, heads, length, d = query.shape
    kv_heads, m = key.shape[1], pk.shape[-2]
    group = heads // kv_heads  # grouped-query attention: query head j uses kv head j // group
    scale = scaling if scaling is not None else d**-0.5
    q = (query * scale).reshape(n, kv_heads, group * length, d)
    scores = torch.cat([_with_shared(q, pk.transpose(-1, -2)), torch.matmul(q, key.transpose(-1, -2))], dim=-1).float()
    if softcap:
        scores = torch.tanh(scores / softcap) * softcap
    if attention_mask is not None:
        mask = attention_mask[:, :, None].expand(n, attention_mask.shape[1], group, length, attention_mask.shape[-1])
        mask = mask.reshape(n, -1, group * length, mask.shape[-1])
        own = scores[..., m:]
        if mask.dtype == torch.bool:
            own.masked_fill_(~mask, float("-inf"))
        else:
            own.add_(mask.float())
    probs = torch.softmax(scores, dim=-1).to(value.dtype)
    out = _with_shared(probs[..., :m], pv) + torch.matmul(probs[..., m:], value)
    return out.reshape(n, heads, length, d).transpose(1, 2).contiguous(), None


def _configs(model) -> list:
    """The distinct configs the model's modules dispatch attention by."""
    found: dict[int, object] = {}
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is not None and hasattr(config, "_attn_implementation_internal"):
            found.setdefault(id(config), config)
    return list(found.values())


@contextmanager
def shared_prefix(model, prefix_kv):
    """Forward passes of ``model`` inside attend to ``prefix_kv`` (per layer (keys, values), batch 1) before the
    keys/values their cache returns; the model's attention setting is restored on exit."""
    from transformers import AttentionInterface

    if NAME not in AttentionInterface._global_mapping:
        AttentionInterface.register(NAME, _split_attention)
    configs = _configs(model)
    saved = [c._attn_implementation_internal for c in configs]
    _active.append({"prefix": prefix_kv, "kernel": model.config._attn_implementation})
    try:
        for c in configs:
            c._attn_implementation_internal = NAME
        yield
    finally:
        for c, s in zip(configs, saved):
            c._attn_implementation_internal = s
        _active.pop()
