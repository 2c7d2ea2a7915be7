"""Scoring: the log-likelihood of a continuation given a context, and greedy generation.

Tokenisation follows lm-evaluation-harness (``HFLM`` with its defaults): trailing spaces of the
context move to the continuation; the context is encoded alone, the pair is encoded whole, and the
continuation is what the whole adds beyond the context's length; the tokenizer's own special
tokens are added (e.g. a Llama BOS) unless the text already starts with the BOS/EOS string; an
empty context conditions on the BOS (else EOS) token. So our numbers are comparable with theirs.

The engine avoids the repeated work that ``HFLM.loglikelihood`` does for every request:

1. Shared prefix: the requests of a condition share ``Request.prefix`` (instruction, pre-prompt,
   few-shot shots). Its tokens run through the model once; every batch row then attends to its
   key/value cache (the batch-1 cache is expanded, not copied, over the batch), so the cost of
   16 shots is paid once per condition instead of once per request.
2. Shared context: the requests with the same context (an item's candidates) form one row, the
   query followed by each candidate's tokens. A 4D attention mask lets a candidate's tokens see the
   prefix, the query and earlier tokens of the same candidate only, and position ids restart after
   the query for each candidate, so every candidate is scored exactly as if it were alone.
3. Rows are sorted by length (longest first) and batched; the LM head runs only at the positions
   whose next token is a continuation token; log-softmax is taken in float32.

Correctness of the prefix reuse does not rest on the prefix string: the cached tokens are the
longest run that the prefix's tokens share with every context's own tokens (lm-eval's
tokenisation of the whole context), so a BPE merge across the prefix/query boundary shortens the
shared run by a token or two; a request whose tokens diverge from the prefix's further back than
``BOUNDARY_SLACK`` tokens is scored without the cached prefix (counted in ``stats.fallbacks``).

Models whose attention this scheme cannot express (sliding-window or linear-attention layers,
attention kernels other than SDPA/eager, very old transformers) are scored on a plain path: one
right-padded row per request, as lm-eval does, still sorted and batched.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F

from audit.backends.base import Request
from audit.backends.hf.generation import GenerationMixin, _progress
from audit.backends.hf.kv_cache import _prefix_cache, _supports_tree_path
from audit.backends.hf.loading import LoadedModel
from audit.backends.hf.split_attention import NAME as SPLIT_ATTENTION
from audit.backends.hf.planning import (BOUNDARY_SLACK, _Unit, _units, assign_rows, padded_tokens, plan_shared_prefix,
                                        tree_mask)
from audit.backends.hf.tokenization import _encode_many, _prefix_token_id, tokenize_requests, max_length

_AUTO_BATCH = {"cuda": 256, "cpu": 32}  # first try of batch_size="auto" (contexts per forward pass)
_PACK_TOKENS = {"cuda": 1024, "cpu": 256}  # tokens per packed row (more contexts per row: less KV copying)
# key/value columns (rows x positions) a decoding batch may hold, as a share of a scoring pass's rows x tokens
# (CPU: 4,096 columns; SmolLM2-135M's calls fill 32 rows of about 90 columns first, 133 MB in float32, and
# GPT-2's longer chain-of-thought prompts 32 rows instead of 23 at 3/8, 11% less CPU; docs/performance.md, Memory)
_GENERATION_SHARE = 1 / 2
# tokens a generation call's prompt pass may hold, as a share of batch_size x pack_tokens (CPU: 768): its
# activations sit beside the decoding slots (768 tokens: about 60 MB on SmolLM2-135M; 512: 25 MB less, 8% more CPU)
_PROMPT_PASS_SHARE = 3 / 32
# token positions (rows x the fullest row, padding included) a scoring pass may hold, as a share of batch_size x
# pack_tokens (CPU: 2,048): long contexts (a two-stage prompt, each context in a row of its own) take fewer per pass
_PASS_SHARE = 1 / 4
_OOM = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


@dataclass
class ScoringStats:
    """Work counters, cumulative over a scorer's calls (``reset()`` to start over)."""

    requests: int = 0  # log-likelihood requests answered
    forward_passes: int = 0  # model calls: shared prefixes, batches, generation steps
    tokens: int = 0  # token positions run through the model (padding excluded)
    prefix_reuse: int = 0  # requests scored on top of a cached shared prefix
    fallbacks: int = 0  # requests with a prefix scored without it (tokens diverge from the prefix's)
    generated: int = 0  # prompts answered by generate()

    def reset(self) -> None:
        for name in self.as_dict():
            setattr(self, name, 0)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)



# --------------------------------------------------------------------------- the scorer


class Scorer(GenerationMixin):
    """Batched log-likelihood scoring and greedy generation on one loaded model.

    ``batch_size`` is the number of contexts per forward pass (a context with all its
    continuations, e.g. an item's two candidates; on the plain path, one request; in
    ``generate``, one prompt); ``"auto"`` starts large and halves on out-of-memory. The contexts
    of a pass are packed one after another into rows of at most ``pack_tokens`` tokens (a longer
    context gets a row of its own), so that the shared prefix's keys/values are copied per row,
    not per context; a pass also stops at ``pass_tokens`` token positions (rows x the fullest row, a quarter
    of ``batch_size`` x ``pack_tokens``), so long contexts take fewer per pass. A generation call's decoding
    batch holds at most ``generation_tokens`` key/value columns (rows x their own positions plus one copy of
    the shared prefix, every layer; by default half of ``batch_size`` x ``pack_tokens``) and its prompt passes
    at most ``prompt_pass_tokens`` tokens: long prompts or budgets decode in fewer rows, so the call's memory is
    one batch's whatever its shape.
    ``progress``: None shows a bar when stderr is a terminal, False never.
    ``prefix_cache=False`` turns off the shared-prefix reuse (for checks and timing).
    """

    def __init__(
        self,
        model: LoadedModel,
        batch_size: int | str = "auto",
        *,
        progress: bool | None = None,
        prefix_cache: bool = True,
        pack_tokens: int | None = None,
        generation_tokens: int | None = None,
    ):
        self.lm = model
        self.auto = batch_size == "auto"
        self.batch_size = _AUTO_BATCH.get(self._device.type, 32) if self.auto else max(1, int(batch_size))
        self.pack_tokens = pack_tokens or _PACK_TOKENS.get(self._device.type, 256)
        self._generation_tokens = generation_tokens  # None: follows batch_size (which "auto" halves on out-of-memory)
        self.progress = progress
        self.prefix_cache = prefix_cache
        self._shard: tuple[int, int] | None = None  # (rank, size) during a data-parallel call
        self.stats = ScoringStats()
        self.max_length = max_length(model.model, model.tokenizer)
        self.tree = _supports_tree_path(model.model)
        if self.tree:
            params = inspect.signature(model.model.base_model.forward).parameters
            self._cache_kw = "cache" if "cache" in params else "past_key_values"
            self._head_matches = self._check_head()

    @property
    def pass_tokens(self) -> int:
        """Token positions (rows x the fullest row's tokens, padding included) one scoring pass may hold: a quarter
        of ``batch_size`` x ``pack_tokens``, at least one context. Short contexts fill ``batch_size`` first; long
        ones (each in a row of its own) stop here, so a pass's activations and attention stay one batch's."""
        return int(self.batch_size * self.pack_tokens * _PASS_SHARE)

    @property
    def generation_tokens(self) -> int:
        """Key/value columns (rows x positions) one decoding batch may hold: as given, else half of a scoring
        pass's ``batch_size`` x ``pack_tokens``."""
        return self._generation_tokens or int(self.batch_size * self.pack_tokens * _GENERATION_SHARE)

    @property
    def prompt_pass_tokens(self) -> int:
        """Prompt tokens one prompt pass of a generation call may hold (a longer prompt alone): 3/32 of
        ``batch_size`` x ``pack_tokens``, at least one packed row, at most a quarter of ``generation_tokens``."""
        share = int(self.batch_size * self.pack_tokens * _PROMPT_PASS_SHARE)
        return max(self.pack_tokens, min(share, self.generation_tokens // 4))

    # ------------------------------------------------------------------ model plumbing

    @property
    def _device(self) -> torch.device:
        """Where inputs go: the input embeddings' device (the first device under a device map)."""
        try:
            return self.lm.model.get_input_embeddings().weight.device
        except (AttributeError, NotImplementedError):
            return torch.device(self.lm.device)

    def _mask_for_kernel(self, mask: torch.Tensor) -> torch.Tensor:
        """SDPA takes the boolean mask; eager attention adds a float mask to its scores."""
        if self.lm.model.config._attn_implementation in ("sdpa", SPLIT_ATTENTION):
            return mask
        dtype = self.lm.model.dtype
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask, torch.finfo(dtype).min)

    def _base(self, ids: torch.Tensor, pos: torch.Tensor, mask: torch.Tensor | None, cache):
        kwargs = {self._cache_kw: cache, "use_cache": True} if cache is not None else {"use_cache": False}
        if mask is not None and mask.ndim == 4:
            mask = self._mask_for_kernel(mask)
        out = self.lm.model.base_model(input_ids=ids, position_ids=pos, attention_mask=mask, **kwargs)
        self.stats.forward_passes += 1
        return out.last_hidden_state

    def _head(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = self.lm.model.get_output_embeddings()(hidden)
        cap = getattr(self.lm.model.config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return logits

    @torch.inference_mode()
    def _check_head(self) -> bool:
        """Does base model + output embeddings give the model's logits? (Else run the whole model.)"""
        model = self.lm.model
        if model.get_output_embeddings() is None:
            return False
        ids = torch.tensor([[_prefix_token_id(self.lm.tokenizer) or 0, 1, 2]], device=self._device)
        pos = torch.arange(3, device=self._device)[None]
        ours = self._head(self._base(ids, pos, None, None)).float()
        theirs = model(input_ids=ids, position_ids=pos, use_cache=False).logits.float()
        self.stats.forward_passes -= 1
        return ours.shape == theirs.shape and bool(torch.allclose(ours, theirs, rtol=1e-3, atol=1e-3))

    def _logprobs_at(self, ids, pos, mask, cache, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Float32 log-softmax of the next-token logits at positions (rows, cols) only."""
        if self._head_matches:
            hidden = self._base(ids, pos, mask, cache)
            logits = self._head(hidden[rows.to(hidden.device), cols.to(hidden.device)])
        else:
            kwargs = {self._cache_kw: cache, "use_cache": True} if cache is not None else {"use_cache": False}
            logits = self.lm.model(
                input_ids=ids, position_ids=pos, attention_mask=self._mask_for_kernel(mask), **kwargs
            ).logits
            self.stats.forward_passes += 1
            logits = logits[rows.to(logits.device), cols.to(logits.device)]
        return F.log_softmax(logits.float(), dim=-1)

    def _run_prefix(self, shared: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Run the shared prefix once; its per-layer keys and values (batch 1)."""
        from transformers.cache_utils import DynamicCache

        cache = DynamicCache(config=self.lm.model.config)
        ids = torch.tensor([list(shared)], device=self._device)
        pos = torch.arange(len(shared), device=self._device)[None]
        self._base(ids, pos, torch.ones_like(ids), cache)
        self.stats.tokens += len(shared)
        return [(layer.keys, layer.values) for layer in cache.layers]

    def _take(self, items: list, start: int, tokens=None) -> int:
        """How many of ``items`` from ``start`` one pass holds: at most ``batch_size``, and where ``tokens`` gives a
        slice's token positions, the most whose positions stay within ``pass_tokens`` (at least one)."""
        n = min(self.batch_size, len(items) - start)
        if tokens is None or n <= 1 or tokens(items[start : start + n]) <= self.pass_tokens:
            return n
        fits, over = 1, n  # the longest slice within the budget, by bisection (positions grow with the slice)
        while over - fits > 1:
            mid = (fits + over) // 2
            fits, over = (mid, over) if tokens(items[start : start + mid]) <= self.pass_tokens else (fits, mid)
        return fits

    def _with_backoff(self, items: list, run, tokens=None) -> Iterable[list]:
        """Call ``run`` on consecutive slices of ``items`` (``_take``), yielding each slice; halves them on OOM if auto."""
        start = 0
        while start < len(items):
            chunk = items[start : start + self._take(items, start, tokens)]
            try:
                run(chunk)
            except (_OOM, RuntimeError) as exc:
                if not (self.auto and self.batch_size > 1 and "out of memory" in str(exc).lower()):
                    raise
                self.batch_size //= 2
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                continue
            start += len(chunk)
            yield chunk

    def _parts(self, items: list, tokens=None) -> list[list]:
        """The batches this process runs: all items, or under data parallelism (``shard=(rank, size)``)
        every size-th batch of the single-process batching, so each batch, and hence every score to the
        last bit, is what one process computes."""
        if self._shard is None:
            return [items] if items else []
        rank, size = self._shard
        batches, start = [], 0
        while start < len(items):
            n = self._take(items, start, tokens)
            batches.append(items[start : start + n])
            start += n
        return batches[rank::size]

    def _batches(self, items: list, run, tokens=None) -> Iterable[list]:
        for part in self._parts(items, tokens):
            yield from self._with_backoff(part, run, tokens)

    # ------------------------------------------------------------------ log-likelihood

    @torch.inference_mode()
    def loglikelihood(self, requests: Sequence[Request], on_scored=None, *, shard: tuple[int, int] | None = None) -> list:
        """log P(continuation | prefix + query) per request, in input order. ``on_scored(indices, out)``,
        when given, is called after each batch with the request indices it scored (the result cache
        commits from it by time). With ``shard=(rank, size)`` only this rank's batches are scored; the
        others' entries are None (``audit.backends.distributed``)."""
        requests = list(requests)
        if not requests:
            return []
        self._shard = shard
        tokens = tokenize_requests(self.lm.tokenizer, requests)
        tokens, truncated = self._truncate(tokens)
        out: list = [None if shard else 0.0] * len(requests)
        bar = _progress(self.progress, len(requests), "scoring")
        try:
            if self.tree:
                for shared, units in self._plan(requests, tokens, truncated):
                    self._score_group(shared, units, out, bar, on_scored)
            else:
                self._score_plain(tokens, out, bar, on_scored)
        finally:
            bar.close()
        self.stats.requests += len(requests)
        return out

    def _truncate(self, tokens):
        """As lm-eval: keep the last ``max_length + 1`` tokens of context + continuation."""
        out, truncated = [], set()
        for i, (ctx, cont) in enumerate(tokens):
            excess = len(ctx) + len(cont) - (self.max_length + 1)
            if excess > 0 and cont:
                ctx = ctx[excess:] if excess < len(ctx) else []
                if not ctx:  # the continuation alone is too long: lm-eval refuses it too
                    raise ValueError(f"continuation of {len(cont)} tokens exceeds the model's {self.max_length}")
                truncated.add(i)
            out.append((ctx, cont))
        return out, truncated

    def _plan(self, requests, tokens, truncated) -> list[tuple[tuple[int, ...], list[_Unit]]]:
        """Groups of (shared prefix tokens, rows): one per prefix, plus one without a cached prefix."""
        by_prefix: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            by_prefix.setdefault(r.prefix if self.prefix_cache and i not in truncated else "", []).append(i)
        groups, plain = [], by_prefix.pop("", [])
        prefixes = list(by_prefix)
        for prefix, prefix_ids in zip(prefixes, _encode_many(self.lm.tokenizer, prefixes)):
            idx = by_prefix[prefix]
            shared, usable = plan_shared_prefix(prefix_ids, [tokens[i][0] for i in idx], BOUNDARY_SLACK)
            if shared == 0:
                usable = [False] * len(idx)
            else:
                mine = [i for i, u in zip(idx, usable) if u]
                groups.append((tuple(tokens[mine[0]][0][:shared]), _units(mine, tokens)))
            rest = [i for i, u in zip(idx, usable) if not u]
            self.stats.fallbacks += len(rest)
            self.stats.prefix_reuse += len(idx) - len(rest)
            plain += rest
        if plain:
            groups.append(((), _units(sorted(plain), tokens)))
        return groups

    def _score_group(self, shared: tuple[int, ...], units: list[_Unit], out: list[float], bar, on_scored=None) -> None:
        m = len(shared)
        units = sorted(units, key=lambda u: (-u.width(m), u.ctx))

        def positions(chunk: list[_Unit]) -> int:
            return padded_tokens([u.width(m) for u in chunk], self.pack_tokens)

        if not self._parts(units, positions):
            return  # another rank's
        seen = self.stats.tokens  # the shared prefix's tokens count toward the first batch
        prefix_kv = self._run_prefix(shared) if shared else None
        for chunk in self._batches(units, lambda chunk: self._score_rows(chunk, shared, prefix_kv, out), positions):
            bar.update(sum(len(o) for u in chunk for o in u.owners), self.stats.tokens - seen)
            seen = self.stats.tokens
            if on_scored is not None:
                on_scored([i for u in chunk for o in u.owners for i in o], out)

    def _score_rows(self, units: list[_Unit], shared: tuple[int, ...], prefix_kv, out: list[float]) -> None:
        """One forward pass for these contexts, packed into rows of about ``pack_tokens`` tokens."""
        m = len(shared)
        n_rows, placed = assign_rows([u.width(m) for u in units], self.pack_tokens)
        ids: list[list[int]] = [[] for _ in range(n_rows)]
        unit_ids, branch_ids, poss = ([[] for _ in range(n_rows)] for _ in range(3))
        positions: dict[tuple[int, int], int] = {}  # (row, column) whose logits are needed -> index
        at, targets, slots = [], [], []  # one entry per scored token
        owners: list[list[int]] = []
        for k, r in placed:  # longest first onto the shortest row
            unit = units[k]
            row, u = ids[r], (unit_ids[r][-1] + 1 if unit_ids[r] else 0)
            query = list(unit.ctx[m:])
            q0, q = len(row), len(query)
            row += query
            unit_ids[r] += [u] * q
            branch_ids[r] += [0] * q
            poss[r] += range(m, m + q)
            for j, cont in enumerate(unit.conts):
                slot = len(owners)
                owners.append(unit.owners[j])
                start = len(row)
                row += cont[:-1]
                unit_ids[r] += [u] * (len(cont) - 1)
                branch_ids[r] += [j + 1] * (len(cont) - 1)
                poss[r] += range(m + q, m + q + len(cont) - 1)
                for t, token in enumerate(cont):  # first tokens of all candidates share one position
                    where = (r, q0 + q - 1 if t == 0 else start + t - 1)
                    at.append(positions.setdefault(where, len(positions)))
                    targets.append(token)
                    slots.append(slot)
        width = max(len(row) for row in ids)
        pad = self.lm.tokenizer.pad_token_id if self.lm.tokenizer.pad_token_id is not None else 0
        dev = self._device

        def padded(lists, fill):
            return torch.tensor([x + [fill] * (width - len(x)) for x in lists], device=dev)

        sums = torch.zeros(len(owners), dtype=torch.float64)
        if targets:
            cache = _prefix_cache(self.lm.model.config, prefix_kv, len(ids), keep=False) if prefix_kv else None
            mask = tree_mask(padded(unit_ids, -1), padded(branch_ids, 0), m)
            rows, cols = torch.tensor(list(positions)).T
            logprobs = self._logprobs_at(padded(ids, pad), padded(poss, 0), mask, cache, rows, cols)
            picked = logprobs[torch.tensor(at, device=logprobs.device), torch.tensor(targets, device=logprobs.device)]
            sums.index_add_(0, torch.tensor(slots), picked.double().cpu())
        self.stats.tokens += sum(len(row) for row in ids)
        for slot, requests in enumerate(owners):
            for i in requests:
                out[i] = float(sums[slot])

    def _score_plain(self, tokens, out: list[float], bar, on_scored=None) -> None:
        """One right-padded row per request through the whole model (models the tree path cannot serve)."""
        order = sorted(range(len(tokens)), key=lambda i: (-len(tokens[i][0]) - len(tokens[i][1]), i))
        pad = self.lm.tokenizer.pad_token_id if self.lm.tokenizer.pad_token_id is not None else 0

        def run(idx: list[int]) -> None:
            seqs = [(tokens[i][0] + tokens[i][1])[:-1] for i in idx]
            width = max(len(s) for s in seqs)
            ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs], device=self._device)
            mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], device=self._device)
            logits = self.lm.model(input_ids=ids, attention_mask=mask).logits
            self.stats.forward_passes += 1
            self.stats.tokens += sum(len(s) for s in seqs)
            for row, i in enumerate(idx):
                ctx, cont = tokens[i]
                if not cont:
                    out[i] = 0.0
                    continue
                n = len(ctx) + len(cont) - 1
                lp = F.log_softmax(logits[row, n - len(cont) : n].float(), dim=-1)
                out[i] = float(lp.gather(1, torch.tensor(cont, device=lp.device)[:, None]).double().sum())

        seen = self.stats.tokens
        for chunk in self._batches(order, run):
            bar.update(len(chunk), self.stats.tokens - seen)
            seen = self.stats.tokens
            if on_scored is not None:
                on_scored(list(chunk), out)
