"""Scoring: the log-likelihood of a continuation given a context, and greedy generation.

Tokenisation follows lm-evaluation-harness (``HFLM._encode_pair``): trailing spaces of the context
move to the continuation, the pair is encoded whole, and the continuation is what the whole adds
to the context's tokens, so our numbers are comparable with theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from ._models import LoadedModel


@dataclass(frozen=True)
class Request:
    """Score ``continuation`` after ``prefix + query``. ``prefix`` is shared by many requests."""

    prefix: str
    query: str
    continuation: str

    @property
    def context(self) -> str:
        return self.prefix + self.query


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces > 0:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
    ctx = tokenizer(context, add_special_tokens=False)["input_ids"]
    return whole[: len(ctx)], whole[len(ctx) :]


def _prepend_bos(tokenizer, ctx: list[int]) -> list[int]:
    """An empty context still needs one token to condition on: as lm-eval, the BOS (else EOS) token."""
    if ctx:
        return ctx
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    return [bos]


class Scorer:
    """Batched log-likelihood scoring and greedy generation on one loaded model."""

    def __init__(self, model: LoadedModel, batch_size: int | str = 16):
        self.lm = model
        self.batch_size = 16 if batch_size == "auto" else max(1, int(batch_size))

    @torch.inference_mode()
    def loglikelihood(self, requests: Sequence[Request]) -> list[float]:
        tok = self.lm.tokenizer
        encoded = []
        for r in requests:
            ctx, cont = encode_pair(tok, r.context, r.continuation)
            encoded.append((_prepend_bos(tok, ctx), cont))
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i][0]) - len(encoded[i][1]))
        out = [0.0] * len(encoded)
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            seqs = [(encoded[i][0] + encoded[i][1])[:-1] for i in idx]
            width = max(len(s) for s in seqs)
            ids = torch.full((len(seqs), width), pad, dtype=torch.long)
            mask = torch.zeros((len(seqs), width), dtype=torch.long)
            for row, s in enumerate(seqs):
                ids[row, : len(s)] = torch.tensor(s)
                mask[row, : len(s)] = 1
            logits = self.lm.model(input_ids=ids.to(self.lm.device), attention_mask=mask.to(self.lm.device)).logits
            logprobs = F.log_softmax(logits.float(), dim=-1)
            for row, i in enumerate(idx):
                ctx, cont = encoded[i]
                n = len(ctx) + len(cont) - 1
                positions = torch.arange(n - len(cont), n, device=logprobs.device)
                targets = torch.tensor(cont, device=logprobs.device)
                out[i] = float(logprobs[row, positions, targets].sum())
        return out

    @torch.inference_mode()
    def generate(self, prompts: Sequence[str], max_new_tokens: int = 16) -> list[str]:
        tok = self.lm.tokenizer
        outputs: list[str] = []
        for prompt in prompts:
            ids = _prepend_bos(tok, tok(prompt, add_special_tokens=False)["input_ids"])
            x = torch.tensor([ids], device=self.lm.device)
            gen = self.lm.model.generate(
                x, attention_mask=torch.ones_like(x), max_new_tokens=max_new_tokens, do_sample=False,
                pad_token_id=tok.pad_token_id,
            )
            outputs.append(tok.decode(gen[0, len(ids) :], skip_special_tokens=True))
        return outputs
