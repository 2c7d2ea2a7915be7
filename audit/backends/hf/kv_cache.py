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
