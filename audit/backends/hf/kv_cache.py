"""The shared prefix's key/value cache, expanded (a view, not a copy) over a batch of rows, and the
check that a model's attention can use it (full attention in every layer, SDPA or eager kernels)."""

from __future__ import annotations

import inspect

import torch


def _supports_tree_path(model) -> bool:
    """Decoder-only, full attention in every layer, SDPA/eager kernels, transformers with cache layers."""
    try:
        from transformers.cache_utils import DynamicCache, DynamicLayer
    except ImportError:
        return False
    cfg = model.config
    if getattr(cfg, "is_encoder_decoder", False):
        return False
    if getattr(cfg, "_attn_implementation", None) not in ("sdpa", "eager"):
        return False
    try:
        layers = DynamicCache(config=cfg).layers
    except Exception:  # noqa: BLE001 - an exotic config: use the plain path
        return False
    if not layers or any(type(layer) is not DynamicLayer for layer in layers):
        return False
    params = inspect.signature(model.base_model.forward).parameters
    return {"position_ids", "attention_mask"} <= set(params) and bool({"cache", "past_key_values"} & set(params))


def _prefix_cache(config, prefix_kv, rows: int, keep: bool):
    """A cache whose layers hold the shared prefix's keys/values expanded (a view) over ``rows``.

    ``keep=False`` (scoring): a forward pass attends to prefix + new states but stores nothing,
    so memory holds one layer's concatenation at a time. ``keep=True`` (generation): the cache
    grows as usual.
    """
    from transformers.cache_utils import DynamicCache, DynamicLayer

    class _SharedLayer(DynamicLayer):
        def update(self, key_states, value_states, *args, **kwargs):
            keys = torch.cat([self.keys, key_states], dim=-2)
            values = torch.cat([self.values, value_states], dim=-2)
            if keep:
                self.keys, self.values = keys, values
            return keys, values

    cache = DynamicCache(config=config)
    layers = []
    for keys, values in prefix_kv:
        layer = _SharedLayer()
        layer.device = keys.device
        layer.keys = keys.expand(rows, -1, -1, -1)
        layer.values = values.expand(rows, -1, -1, -1)
        layer.is_initialized = True
        layers.append(layer)
    cache.layers = layers
    return cache


def _generation_cache(config, prefix_kv, rows: int, capacity: int):
    """A cache for greedy generation whose layers hold their keys/values in a buffer of ``capacity``
    positions (shared prefix + prompt + new tokens), allocated at the first forward pass: each step
    writes its states in place, where ``DynamicLayer`` copies the whole cache by concatenation at every
    step. ``prefix_kv`` (batch 1) fills the first positions of every row. ``keep_rows`` drops finished rows."""
    from transformers.cache_utils import DynamicCache, DynamicLayer

    class _GrowingLayer(DynamicLayer):
        def __init__(self, prefix=None):
            super().__init__()
            self.prefix, self.length = prefix, 0

        def update(self, key_states, value_states, *args, **kwargs):
            if self.length == 0:
                b, h, _, d = key_states.shape
                self.device = key_states.device
                self.buffers = [key_states.new_empty(b, h, capacity, d), value_states.new_empty(b, h, capacity, value_states.shape[-1])]
                if self.prefix is not None:
                    for buffer, states in zip(self.buffers, self.prefix):
                        buffer[:, :, : states.shape[-2]] = states
                    self.length = self.prefix[0].shape[-2]
                    self.prefix = None
                self.is_initialized = True
            n = key_states.shape[-2]
            self.buffers[0][:, :, self.length : self.length + n] = key_states
            self.buffers[1][:, :, self.length : self.length + n] = value_states
            self.length += n
            self.keys, self.values = (buffer[:, :, : self.length] for buffer in self.buffers)
            return self.keys, self.values

        def keep_rows(self, rows: torch.Tensor) -> None:
            self.buffers = [buffer[rows.to(buffer.device)] for buffer in self.buffers]
            self.keys, self.values = (buffer[:, :, : self.length] for buffer in self.buffers)

    cache = DynamicCache(config=config)
    cache.layers = [_GrowingLayer(prefix) for prefix in (prefix_kv or [None] * len(cache.layers))]
    return cache
