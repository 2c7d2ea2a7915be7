"""The key/value memory of a decoding batch: per layer, one buffer of ``slots`` rows x ``capacity`` columns,
allocated once per generation call and written in place, and the shared prefix's keys/values held once.

A row's columns are its own tokens: the prompt's tokens after the shared prefix of ``m`` tokens, then each new
token at the row's next column (column = position - ``m``). The prefix is not copied into the slots: a decoding
step attends to its single copy and to the row's columns with one softmax (``split_attention``). So a decoding
step writes one column per row (no growing cache copied at every step), rows of different lengths need no
shifting (a row sees the columns below its length), a row that ends frees its slot (the rows above move
down: a copy of the moved rows only) and a waiting prompt's prompt pass writes straight into a free slot.
``slots x capacity`` plus the prefix's ``m`` columns is the call's whole key/value memory
(``Scorer.generation_tokens`` bounds it)."""

from __future__ import annotations

from functools import lru_cache

import torch


class DecodingSlots:
    def __init__(self, slots: int, capacity: int, prefix_kv, m: int, device: torch.device):
        self.slots, self.capacity, self.m, self.device = slots, capacity, m, device
        self.prefix_kv = prefix_kv
        self.buffers: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        self.lengths = torch.zeros(slots, dtype=torch.long, device=device)  # columns written per slot
        self.rows = 0  # slots 0..rows-1 hold the batch's rows

    def _allocate(self, layer: int, keys: torch.Tensor) -> None:
        """Buffers shaped after the first keys seen (heads, head size, dtype). Zeroed: a masked column is still
        multiplied by its zero weight, and uninitialised memory may hold NaN."""
        if self.buffers is None:
            self.buffers = [None] * self._layers
        heads, dim = keys.shape[1], keys.shape[3]
        k, v = (torch.zeros(self.slots, heads, self.capacity, dim, dtype=keys.dtype, device=keys.device) for _ in range(2))
        self.buffers[layer] = (k, v)

    def cache(self, config, layer_update):
        """A ``DynamicCache`` whose layer ``i`` answers ``update`` with ``layer_update(i, keys, values)``."""
        from transformers.cache_utils import DynamicCache

        cache = DynamicCache(config=config)
        self._layers = len(cache.layers)
        cache.layers = [_layer_class()(i, layer_update) for i in range(len(cache.layers))]
        return cache

    # ------------------------------------------------------------------ the prompt pass

    def prefill_cache(self, config, src_rows: torch.Tensor, src_cols: torch.Tensor,
                      dst_slots: torch.Tensor, dst_cols: torch.Tensor):
        """The cache of a packed prompt pass: each layer's new keys/values (packed rows) are scattered into the
        prompts' slots (packed ``(src_rows, src_cols)`` -> slot ``(dst_slots, dst_cols)``, columns after the
        prefix) as the pass computes them, and the pass attends to the shared prefix and its own packed tokens
        (one layer's copy at a time)."""

        def update(i: int, keys: torch.Tensor, values: torch.Tensor):
            if self.buffers is None or self.buffers[i] is None:
                self._allocate(i, keys)
            k, v = self.buffers[i]
            sr, sc, ds, dc = (t.to(k.device) for t in (src_rows, src_cols, dst_slots, dst_cols))
            k[ds, :, dc] = keys[sr, :, sc]
            v[ds, :, dc] = values[sr, :, sc]
            if self.prefix_kv is None or not self.m:
                return keys, values
            pk, pv = self.prefix_kv[i]
            rows = keys.shape[0]
            return (torch.cat([pk.expand(rows, -1, -1, -1), keys], dim=-2),
                    torch.cat([pv.expand(rows, -1, -1, -1), values], dim=-2))

        return self.cache(config, update)

    # ------------------------------------------------------------------ a decoding step

    def step(self, config):
        """The cache and attention mask of one decoding step of rows ``0..rows-1``: each row's new key/value goes to
        column ``lengths[row]`` (its position less ``m``), and it sees its columns ``0..lengths[row]`` (and, through
        ``split_attention.shared_prefix``, the prefix)."""
        n = self.rows
        lengths = self.lengths[:n]
        width = int(lengths.max()) + 1
        index = torch.arange(n, device=self.device)

        def update(i: int, keys: torch.Tensor, values: torch.Tensor):
            k, v = self.buffers[i]
            at, cols = index.to(k.device), lengths.to(k.device)
            k[at, :, cols] = keys[:, :, 0]
            v[at, :, cols] = values[:, :, 0]
            return k[:n, :, :width], v[:n, :, :width]

        seen = torch.arange(width, device=self.device)[None] <= lengths[:, None]
        return self.cache(config, update), seen[:, None, None, :]

    def keep(self, kept: list[int]) -> None:
        """Rows ``kept`` (ascending slot numbers) stay, moved down to slots ``0..len(kept)-1``."""
        moved = [(j, s) for j, s in enumerate(kept) if j != s]
        if moved and self.buffers is not None:
            dst = torch.tensor([j for j, _ in moved], device=self.device)
            src = torch.tensor([s for _, s in moved], device=self.device)
            width = int(self.lengths[src].max())
            for k, v in self.buffers:
                dst, src = dst.to(k.device), src.to(k.device)
                k[dst, :, :width] = k[src, :, :width]
                v[dst, :, :width] = v[src, :, :width]
            self.lengths[dst.to(self.device)] = self.lengths[src.to(self.device)]
        self.rows = len(kept)


@lru_cache(maxsize=1)
def _layer_class():
    """The cache layer that hands its updates to a callback. Made once, at module level: a class made per call
    sits in a reference cycle (a class refers to itself), so the buffers its closure reaches would stay resident
    until the cyclic garbage collector runs."""
    from transformers.cache_utils import DynamicLayer

    class _CallbackLayer(DynamicLayer):
        def __init__(self, index: int, layer_update):
            super().__init__()
            self.index, self.layer_update, self.is_initialized = index, layer_update, True

        def update(self, key_states, value_states, *args, **kwargs):
            return self.layer_update(self.index, key_states, value_states)

        def get_seq_length(self) -> int:
            return 0

    return _CallbackLayer
