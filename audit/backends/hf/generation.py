"""Batched greedy generation for the scorer: prompts that share a prefix reuse its key/value cache, the
rest go through ``model.generate``. Mixed into ``audit.backends.hf.scorer.Scorer``."""

from __future__ import annotations

import sys
from typing import Sequence

import torch

from audit.backends.hf.kv_cache import _prefix_cache
from audit.backends.hf.planning import common_prefix_len, tree_mask
from audit.backends.hf.tokenization import _encode_many, _prefix_token_id


def _progress(enabled: bool | None, total: int, desc: str):
    from tqdm.auto import tqdm

    on = enabled is not False and total > 0 and sys.stderr.isatty()
    return _Progress(tqdm(total=total, desc=desc, disable=not on, leave=False))


class _Progress:
    """The engine's own tqdm bar (a terminal on stderr, outside pytest) and the audit's progress
    (``audit.run.progress``: the lines the pytest plugin shows per model and condition)."""

    def __init__(self, bar):
        self.bar = bar

    def update(self, requests: int, tokens: int = 0) -> None:
        from audit.run import progress

        self.bar.update(requests)
        progress.advance(requests, tokens)

    def close(self) -> None:
        self.bar.close()


class GenerationMixin:
    """Needs the scorer's model plumbing (``lm``, ``_device``, ``_base``, ``_head``, ``_run_prefix``,
    ``_with_backoff``, ``stats``, ``progress``)."""


    def _prompt_ids(self, prompt: str) -> list[int]:
        ids = _encode_many(self.lm.tokenizer, [prompt])[0]
        return ids or [_prefix_token_id(self.lm.tokenizer)]

    def _eos_ids(self) -> set[int]:
        eos = getattr(getattr(self.lm.model, "generation_config", None), "eos_token_id", None)
        if eos is None:
            eos = self.lm.tokenizer.eos_token_id
        return set(eos) if isinstance(eos, (list, tuple)) else ({eos} if eos is not None else set())

    @torch.inference_mode()
    def generate(self, prompts: Sequence[str], max_new_tokens: int = 16, *, shard: tuple[int, int] | None = None) -> list:
        """Greedy continuation of each prompt, as ``model.generate(do_sample=False)`` gives it.

        Prompts are tokenised as lm-eval does; a row stops at the generation config's EOS token;
        special tokens are dropped from the text. Batched, with the prompts' common leading
        tokens (instruction, shots) run once. Other generation-config settings are not applied.
        """
        prompts = list(prompts)
        if not prompts:
            return []
        seqs = [self._prompt_ids(p) for p in prompts]
        self._shard = shard
        outputs: list = [None if shard else ""] * len(prompts)
        bar = _progress(self.progress, len(prompts), "generating")
        try:
            if not (self.tree and self._head_matches):
                for part in self._parts(list(range(len(seqs)))):
                    for i in part:
                        outputs[i] = self._generate_hf(seqs[i], max_new_tokens)
                        bar.update(1)
            else:
                shared = 0
                if self.prefix_cache and len(seqs) > 1:
                    shared = min(min(common_prefix_len(seqs[0], s) for s in seqs), min(len(s) for s in seqs) - 1)
                prefix = tuple(seqs[0][:shared])
                prefix_kv = self._run_prefix(prefix) if shared else None
                order = sorted(range(len(seqs)), key=lambda i: (-len(seqs[i]), i))

                def run(idx: list[int]) -> None:
                    texts = self._generate_rows([seqs[i][shared:] for i in idx], shared, prefix_kv, max_new_tokens)
                    for i, text in zip(idx, texts):
                        outputs[i] = text

                seen = self.stats.tokens
                for chunk in self._batches(order, run):
                    bar.update(len(chunk), self.stats.tokens - seen)
                    seen = self.stats.tokens
        finally:
            bar.close()
        self.stats.generated += len(prompts)
        return outputs

    def _generate_hf(self, ids: list[int], max_new_tokens: int) -> str:
        x = torch.tensor([ids], device=self._device)
        gen = self.lm.model.generate(
            x, attention_mask=torch.ones_like(x), max_new_tokens=max_new_tokens, do_sample=False,
            pad_token_id=self.lm.tokenizer.pad_token_id,
        )
        self.stats.forward_passes += gen.shape[1] - len(ids)
        return self.lm.tokenizer.decode(gen[0, len(ids) :], skip_special_tokens=True)

    def _generate_rows(self, queries: list[list[int]], m: int, prefix_kv, max_new_tokens: int) -> list[str]:
        """Greedy decoding of right-padded rows after a shared prefix, with per-row positions and masks."""
        from transformers.cache_utils import DynamicCache

        n_rows, dev = len(queries), self._device
        width = max(len(q) for q in queries)
        pad = self.lm.tokenizer.pad_token_id if self.lm.tokenizer.pad_token_id is not None else 0
        ids = torch.tensor([q + [pad] * (width - len(q)) for q in queries], device=dev)
        pos = torch.tensor([list(range(m, m + len(q))) + [0] * (width - len(q)) for q in queries], device=dev)
        seg = torch.tensor([[0] * len(q) + [-1] * (width - len(q)) for q in queries], device=dev)
        mask = tree_mask(seg, torch.zeros_like(seg), m)
        cache = (
            _prefix_cache(self.lm.model.config, prefix_kv, n_rows, keep=True)
            if prefix_kv
            else DynamicCache(config=self.lm.model.config)
        )
        keys_seen = torch.cat([torch.ones(n_rows, m, dtype=torch.bool, device=dev), seg >= 0], dim=1)
        lengths = torch.tensor([len(q) for q in queries], device=dev)
        hidden = self._base(ids, pos, mask, cache)
        self.stats.tokens += int(lengths.sum())
        nxt = self._head(hidden[torch.arange(n_rows, device=hidden.device), (lengths - 1).to(hidden.device)]).argmax(-1)
        eos = self._eos_ids()
        generated: list[list[int]] = [[] for _ in queries]
        done = [False] * n_rows
        for step in range(max_new_tokens):
            for r, token in enumerate(nxt.tolist()):
                if not done[r]:
                    generated[r].append(token)
                    done[r] = token in eos
            if all(done) or step == max_new_tokens - 1:
                break
            keys_seen = torch.cat([keys_seen, torch.ones(n_rows, 1, dtype=torch.bool, device=dev)], dim=1)
            step_pos = (m + lengths + step)[:, None]
            hidden = self._base(nxt[:, None].to(dev), step_pos, keys_seen[:, None, None, :], cache)
            self.stats.tokens += done.count(False)
            nxt = self._head(hidden[:, -1]).argmax(-1)
        return [self.lm.tokenizer.decode(g, skip_special_tokens=True) for g in generated]
