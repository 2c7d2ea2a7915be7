"""Batched greedy generation for the scorer: the prompts' common prefix runs once, prompts that share a
further opening run it once per group, the prompt pass is packed without padding, rows stop at their answer
(``audit.prompts.stopping``) and leave a decoding batch that waiting prompts refill; models the
shared-prefix path cannot serve go through ``model.generate`` in left-padded batches. Mixed into
``audit.backends.hf.scorer.Scorer``."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from typing import Sequence

import torch

from audit.backends.hf.decoding import DecodingSlots
from audit.backends.hf.split_attention import shared_prefix
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
                 shard: tuple[int, int] | None = None, on_generated=None) -> list:
        """Greedy continuation of each prompt: the tokens ``model.generate(do_sample=False)`` gives it, one
        prompt at a time, up to the first that ends it.

        Prompts are tokenised as lm-eval does. A row ends at the generation config's EOS token, after
        ``max_new_tokens`` tokens, or, with a ``stop`` rule (``audit.prompts.stopping``), at the first
        token after which ``stop.cut`` says the text is complete; its text is then cut there. Special
        tokens are dropped from the text. Batched: the prompts' common leading tokens (instruction,
        shots) run once and their keys/values are shared by every row; prompts with a further opening in
        common (an item's context asked twice) run it once; the prompt pass packs the prompts' tokens
        without padding; a row that ends leaves the batch and waiting prompts take its place; a repeated
        prompt is computed once. Batch size and prompt order change no token (tests/test_generation.py), short of
        a near tie that batched arithmetic's rounding could tip.
        Models the shared-prefix path cannot serve run through ``model.generate`` in left-padded batches.
        Other generation-config settings are not applied. ``on_generated(indices, texts)``, when given, is called
        as rows end with the prompts whose texts are final (the result cache commits them while the rest run).
        """
        texts: list = [None] * len(prompts)

        def ready(pairs: list[tuple[int, list[int]]]) -> None:
            for i, new in pairs:
                texts[i] = self._text(new, stop)
            on_generated([i for i, _ in pairs], texts)

        tokens = self.generate_tokens(prompts, max_new_tokens, stop=stop, shard=shard,
                                      on_tokens=ready if on_generated is not None else None)
        return [text if text is not None or t is None else self._text(t, stop)  # texts told as rows ended are kept
                for text, t in zip(texts, tokens)]

    @torch.inference_mode()
    def generate_tokens(self, prompts: Sequence[str], max_new_tokens: int = 16, *, stop: StopRule | None = None,
                        shard: tuple[int, int] | None = None, on_tokens=None) -> list:
        """``generate``'s new tokens of each prompt (the last one is the one that ended the row, EOS included).
        ``on_tokens([(index, tokens), ...])`` is told each prompt's tokens as soon as they are final (not with
        ``shard``)."""
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
        copies: dict[int, list[int]] = {}
        for j, i in enumerate(copy_of):
            copies.setdefault(i, []).append(j)
        order = sorted(first.values(), key=lambda i: (seqs[i], i) if tree else (-len(seqs[i]), i))

        def ready(distinct: list[int]) -> None:  # these prompts' tokens are final: tell on_tokens, copies included
            if on_tokens is not None and self._shard is None:
                on_tokens([(j, outputs[i]) for i in distinct for j in copies[i]])
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
                    def ended(rows: dict[int, list[int]]) -> None:
                        for r, new in rows.items():
                            outputs[idx[r]] = new
                        done(len(rows))
                        ready([idx[r] for r in rows])

                    rows = self._generate_rows([seqs[i][shared:] for i in idx], shared, prefix_kv, max_new_tokens, stop,
                                               None if self._shard else ended)
                    for i, new in zip(idx, rows):
                        outputs[i] = new

            seen = self.stats.tokens

            def done(rows: int) -> None:
                nonlocal seen
                bar.update(rows, self.stats.tokens - seen)
                seen = self.stats.tokens

            if tree and self._shard is None:  # one stream of prompts, the decoding batch refilled as rows end
                for _ in self._with_backoff([order], lambda one: run(one[0])):
                    pass
            else:  # batches that are each what one process computes (data parallel), or the plain path
                for chunk in self._batches(order, run):
                    done(len(chunk))
                    ready(chunk)
            bar.update(len(prompts) - len(order))
        finally:
            bar.close()
        release_freed_memory(self._device)
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

    def _decoding_rows(self, prompts: int, capacity: int, shared: int = 0) -> int:
        """Rows of a decoding batch whose slots hold ``capacity`` key/value columns each beside one copy of a
        ``shared``-token prefix: ``batch_size`` (at most one per prompt), fewer where their columns would pass
        ``generation_tokens`` (the call's key/value memory)."""
        return max(1, min(self.batch_size, prompts, (self.generation_tokens - shared) // max(1, capacity)))

    def _generate_rows(self, queries: list[list[int]], m: int, prefix_kv, max_new_tokens: int,
                       stop: StopRule | None, on_done=None) -> list[list[int]]:
        """Greedy decoding of prompts (their tokens after a shared prefix of ``m`` tokens, ``prefix_kv``) in a batch
        of ``_decoding_rows`` slots (``decoding.DecodingSlots``): a row that ends frees its slot, and once a quarter
        of the slots are free the next waiting prompts' prompt passes (``_prefill``, each of at most
        ``prompt_pass_tokens`` tokens) write them into the free slots, so the batch stays full until the prompts
        run out. ``on_done({row: tokens})`` is told the rows (positions in ``queries``) that ended, with their tokens."""
        capacity = max(len(q) for q in queries) + max_new_tokens  # a row's own columns; the prefix is held once
        width = self._decoding_rows(len(queries), capacity, m)
        slots = DecodingSlots(width, capacity, prefix_kv, m, self._device)
        config = self.lm.model.config
        waiting = list(range(len(queries)))
        generated: list[list[int]] = [[] for _ in queries]
        alive: list[int] = []  # the query in each slot 0..len(alive)-1
        nxt = None
        eos = self._eos_ids()
        while alive or waiting:
            if waiting and len(alive) <= width - max(1, width // 4):
                take, waiting = waiting[: width - len(alive)], waiting[width - len(alive):]
                for part in _prompt_passes(take, queries, self.prompt_pass_tokens):
                    new_nxt = self._prefill([queries[i] for i in part], m, slots, len(alive))
                    nxt = new_nxt if not alive else torch.cat([nxt, new_nxt.to(nxt.device)])
                    alive += part
                slots.rows = len(alive)
            keep = []
            for j, (r, token) in enumerate(zip(alive, nxt.tolist())):
                generated[r].append(token)
                if len(generated[r]) < max_new_tokens and not self._finished(generated[r], eos, stop):
                    keep.append(j)
            if len(keep) < len(alive):
                if on_done is not None:
                    kept = set(keep)
                    on_done({r: generated[r] for j, r in enumerate(alive) if j not in kept})
                slots.keep(keep)
                nxt = nxt[torch.tensor(keep, dtype=torch.long, device=nxt.device)]
                alive = [alive[j] for j in keep]
            if not alive:
                continue
            positions = slots.lengths[: len(alive), None] + m
            cache, mask = slots.step(config)
            with shared_prefix(self.lm.model, prefix_kv) if m else nullcontext():
                hidden = self._base(nxt[:, None].to(self._device), positions, mask, cache)
            slots.lengths[: len(alive)] += 1
            self.stats.tokens += len(alive)
            nxt = self._head(hidden[:, -1]).argmax(-1)
        return generated

    def _prefill(self, queries: list[list[int]], m: int, slots: DecodingSlots, first_slot: int) -> torch.Tensor:
        """The prompt pass of these prompts, written into slots ``first_slot..``: their own tokens packed without
        padding, the opening that several share (``planning.prompt_groups``) run once, the tree mask keeping each
        prompt's tokens to its own opening. Returns each prompt's first new token."""
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

        def flat(values) -> torch.Tensor:
            return torch.tensor([v for i, cs in enumerate(cols) for v in values(i, cs)], dtype=torch.long, device=dev)

        cache = slots.prefill_cache(self.lm.model.config, flat(lambda i, cs: [row_of[i]] * len(cs)), flat(lambda i, cs: cs),
                                    flat(lambda i, cs: [first_slot + i] * len(cs)),
                                    flat(lambda i, cs: range(len(cs))))
        hidden = self._base(padded(ids, pad), padded(poss, 0), tree_mask(padded(units, -1), padded(branches, 0), m), cache)
        self.stats.tokens += sum(len(x) for x in ids)
        slots.lengths[first_slot: first_slot + len(queries)] = torch.tensor([len(q) for q in queries], device=dev)
        rows = torch.tensor(row_of, device=hidden.device)
        last = torch.tensor([c[-1] for c in cols], device=hidden.device)
        return self._head(hidden[rows, last]).argmax(-1)


def _prompt_passes(take: list[int], queries: list[list[int]], tokens: int) -> list[list[int]]:
    """``take`` in consecutive parts of at most ``tokens`` prompt tokens (a longer prompt alone): one prompt pass
    each, so that a pass's activations stay within a share of the decoding batch's memory."""
    parts: list[list[int]] = []
    size = 0
    for i in take:
        if parts and size + len(queries[i]) <= tokens:
            parts[-1].append(i)
            size += len(queries[i])
        else:
            parts.append([i])
            size = len(queries[i])
    return parts


def release_freed_memory(device: torch.device) -> None:
    """On CPU under glibc, hand the heap's freed pages back to the system (``malloc_trim``): the decoding batch's
    buffers are freed at the end of a call, but glibc keeps freed heap memory resident, so without it every
    call's peak would start from the last one's."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    if device.type != "cpu" or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
