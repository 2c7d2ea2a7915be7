"""Batched greedy generation for the scorer: prompts that share a prefix reuse its key/value cache, rows
stop at their answer (``audit.prompts.stopping``); models the shared-prefix path cannot serve go through
``model.generate`` in left-padded batches. Mixed into ``audit.backends.hf.scorer.Scorer``."""

from __future__ import annotations

import sys
from typing import Sequence

import torch

from audit.backends.hf.kv_cache import _prefix_cache
from audit.backends.hf.planning import assign_rows, common_prefix_len, prompt_groups, tree_mask
from audit.backends.hf.tokenization import _encode_many, _prefix_token_id
from audit.prompts.stopping import StopRule


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
    def generate(self, prompts: Sequence[str], max_new_tokens: int = 16, *, stop: StopRule | None = None,
                 shard: tuple[int, int] | None = None) -> list:
        """Greedy continuation of each prompt: the tokens ``model.generate(do_sample=False)`` gives it, one
        prompt at a time, up to the first that ends it.

        Prompts are tokenised as lm-eval does. A row ends at the generation config's EOS token, after
        ``max_new_tokens`` tokens, or, with a ``stop`` rule (``audit.prompts.stopping``), at the first
        token after which ``stop.cut`` says the text is complete; its text is then cut there. Special
        tokens are dropped from the text. Batched: the prompts' common leading tokens (instruction,
        shots) run once and their keys/values are shared by every row; a row that ends leaves the batch.
        Models the shared-prefix path cannot serve run through ``model.generate`` in left-padded batches.
        Other generation-config settings are not applied.
        """
        tokens = self.generate_tokens(prompts, max_new_tokens, stop=stop, shard=shard)
        return [None if t is None else self._text(t, stop) for t in tokens]

    @torch.inference_mode()
    def generate_tokens(self, prompts: Sequence[str], max_new_tokens: int = 16, *, stop: StopRule | None = None,
                        shard: tuple[int, int] | None = None) -> list:
        """``generate``'s new tokens of each prompt (the last one is the one that ended the row, EOS included)."""
        prompts = list(prompts)
        if not prompts:
            return []
        seqs = [self._prompt_ids(p) for p in prompts]
        self._shard = shard
        outputs: list = [None if shard else []] * len(prompts)
        bar = _progress(self.progress, len(prompts), "generating")
        tree = self.tree and self._head_matches
        # one row per distinct prompt; the shared-prefix path takes them in token order (neighbours share their
        # opening), the plain path longest first (a left-padded batch pads little)
        first: dict[tuple[int, ...], int] = {}
        copy_of = [first.setdefault(tuple(s), i) for i, s in enumerate(seqs)]
        order = sorted(first.values(), key=lambda i: (seqs[i], i) if tree else (-len(seqs[i]), i))
        try:
            if not tree:
                def run(idx: list[int]) -> None:
                    for i, new in zip(idx, self._generate_hf([seqs[i] for i in idx], max_new_tokens, stop)):
                        outputs[i] = new
            else:
                shared = 0
                if self.prefix_cache and len(seqs) > 1:
                    shared = min(min(common_prefix_len(seqs[0], s) for s in seqs), min(len(s) for s in seqs) - 1)
                prefix_kv = self._run_prefix(tuple(seqs[0][:shared])) if shared else None

                def run(idx: list[int]) -> None:
                    rows = self._generate_rows([seqs[i][shared:] for i in idx], shared, prefix_kv, max_new_tokens, stop)
                    for i, new in zip(idx, rows):
                        outputs[i] = new

            seen = self.stats.tokens
            for chunk in self._batches(order, run):
                bar.update(len(chunk), self.stats.tokens - seen)
                seen = self.stats.tokens
            bar.update(len(prompts) - len(order))
        finally:
            bar.close()
        outputs = [outputs[i] for i in copy_of]  # a repeated prompt gets its first copy's tokens
        self.stats.generated += len(prompts)
        return outputs

    def _finished(self, tokens: list[int], eos: set[int], stop: StopRule | None) -> bool:
        if tokens[-1] in eos:
            return True
        return stop is not None and stop.cut(self.lm.tokenizer.decode(tokens, skip_special_tokens=True))[0]

    def _text(self, tokens: list[int], stop: StopRule | None) -> str:
        text = self.lm.tokenizer.decode(tokens, skip_special_tokens=True)
        return stop.cut(text)[1] if stop is not None else text

    def _generate_hf(self, seqs: list[list[int]], max_new_tokens: int, stop: StopRule | None) -> list[list[int]]:
        """``model.generate`` on left-padded rows (the attention mask hides the padding; the model derives
        positions from it), each row ended by EOS or the stop rule."""
        from transformers import StoppingCriteria, StoppingCriteriaList

        pad = self.lm.tokenizer.pad_token_id if self.lm.tokenizer.pad_token_id is not None else 0
        width = max(len(s) for s in seqs)
        x = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], device=self._device)
        mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=self._device)
        eos, scorer = self._eos_ids(), self

        class _Stop(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                rows = input_ids[:, width:].tolist()
                return torch.tensor([bool(r) and scorer._finished(r, eos, stop) for r in rows], device=input_ids.device)

        gen = self.lm.model.generate(
            x, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad,
            stopping_criteria=StoppingCriteriaList([_Stop()]) if stop is not None else None,
        )
        self.stats.forward_passes += gen.shape[1] - width
        self.stats.tokens += int(mask.sum()) + len(seqs) * (gen.shape[1] - width)
        out = []
        for row in gen[:, width:].tolist():
            tokens: list[int] = []
            for token in row:  # up to the token that ended the row (HF pads the rows that ended first)
                tokens.append(token)
                if self._finished(tokens, eos, stop):
                    break
            out.append(tokens)
        return out

    def _generate_rows(self, queries: list[list[int]], m: int, prefix_kv, max_new_tokens: int,
                       stop: StopRule | None) -> list[list[int]]:
        """Greedy decoding of rows after a shared prefix of ``m`` tokens (``prefix_kv``).

        The prompt pass packs the rows' own tokens without padding (``planning.prompt_groups``: prompts
        with a common opening run it once, the tree mask keeps each prompt's tokens seeing only its own
        opening), then each prompt's keys/values are gathered into a decoding row of its own, right-padded
        and masked; per-row positions continue each prompt. A row that ends is dropped from the batch
        (and from the key/value cache)."""
        from transformers.cache_utils import DynamicCache

        dev = self._device
        groups = prompt_groups(queries, self.prefix_cache, self.pack_tokens)
        n_rows, placed = assign_rows([s + sum(len(queries[i]) - s for i in members) for s, members in groups],
                                     self.pack_tokens)
        ids, units, branches, poss = ([[] for _ in range(n_rows)] for _ in range(4))
        row_of, cols = [0] * len(queries), [[] for _ in queries]  # where each prompt's tokens lie
        for g, r in placed:
            shared, members = groups[g]
            u, start = (units[r][-1] + 1 if units[r] else 0), len(ids[r])
            ids[r] += queries[members[0]][:shared]
            units[r] += [u] * shared
            branches[r] += [0] * shared
            poss[r] += range(m, m + shared)
            for j, i in enumerate(members):
                own, at = queries[i][shared:], len(ids[r])
                ids[r] += own
                units[r] += [u] * len(own)
                branches[r] += [j + 1] * len(own)
                poss[r] += range(m + shared, m + shared + len(own))
                row_of[i], cols[i] = r, [*range(start, start + shared), *range(at, at + len(own))]
        width = max(len(x) for x in ids)
        pad = self.lm.tokenizer.pad_token_id if self.lm.tokenizer.pad_token_id is not None else 0

        def padded(lists, fill):
            return torch.tensor([x + [fill] * (width - len(x)) for x in lists], device=dev)

        packed = (_prefix_cache(self.lm.model.config, prefix_kv, n_rows, keep=True) if prefix_kv
                  else DynamicCache(config=self.lm.model.config))
        hidden = self._base(padded(ids, pad), padded(poss, 0), tree_mask(padded(units, -1), padded(branches, 0), m), packed)
        self.stats.tokens += sum(len(x) for x in ids)
        rows = torch.tensor(row_of, device=dev)
        last = torch.tensor([c[-1] for c in cols], device=dev)
        nxt = self._head(hidden[rows.to(hidden.device), last.to(hidden.device)]).argmax(-1)
        # each prompt's keys/values: the prefix's, then its own columns of the packed row (right-padded)
        lengths = torch.tensor([len(q) for q in queries], device=dev)
        longest = int(lengths.max())
        gather = torch.tensor([[*range(m), *(m + c for c in cs), *[0] * (longest - len(cs))] for cs in cols], device=dev)
        per_prompt = [tuple(t.transpose(1, 2)[rows[:, None].to(t.device), gather.to(t.device)].transpose(1, 2)
                            for t in (layer.keys, layer.values)) for layer in packed.layers]
        del packed, hidden
        cache = _prefix_cache(self.lm.model.config, per_prompt, len(queries), keep=True)
        keys_seen = torch.arange(m + longest, device=dev)[None] < (m + lengths)[:, None]
        return self._decode(cache, keys_seen, m + lengths, nxt, max_new_tokens, stop)

    def _decode(self, cache, keys_seen: torch.Tensor, positions: torch.Tensor, nxt: torch.Tensor,
                max_new_tokens: int, stop: StopRule | None) -> list[list[int]]:
        """Greedy steps from each row's first new token ``nxt``: ``positions`` are the rows' next positions,
        ``keys_seen`` which cached keys each row attends to; a row that ends leaves the batch and the cache."""
        dev, eos = self._device, self._eos_ids()
        generated: list[list[int]] = [[] for _ in range(len(positions))]
        alive = list(range(len(positions)))  # the batch's rows, as indices into generated
        for step in range(max_new_tokens):
            keep = []
            for j, (r, token) in enumerate(zip(alive, nxt.tolist())):
                generated[r].append(token)
                if not self._finished(generated[r], eos, stop):
                    keep.append(j)
            if not keep or step == max_new_tokens - 1:
                break
            if len(keep) < len(alive):
                rows = torch.tensor(keep, device=dev)
                for layer in cache.layers:
                    layer.keys, layer.values = layer.keys[rows.to(layer.keys.device)], layer.values[rows.to(layer.values.device)]
                keys_seen, positions, nxt = keys_seen[rows], positions[rows], nxt[rows.to(nxt.device)]
                alive = [alive[j] for j in keep]
            keys_seen = torch.cat([keys_seen, torch.ones(len(alive), 1, dtype=torch.bool, device=dev)], dim=1)
            hidden = self._base(nxt[:, None].to(dev), (positions + step)[:, None], keys_seen[:, None, None, :], cache)
            self.stats.tokens += len(alive)
            nxt = self._head(hidden[:, -1]).argmax(-1)
        return generated
