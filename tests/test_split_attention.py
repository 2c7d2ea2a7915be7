"""Attention to a prefix held once (``audit.backends.hf.split_attention``): the same output as attention over the
prefix copied in front of every row's keys/values (an independent computation: a dense softmax over the
concatenation), for boolean and additive masks, grouped-query heads, several query positions and softcapping;
and greedy generation through it (a decoding batch whose slots hold no prefix) equal to HF one prompt at a
time on an eager-attention model too."""

from __future__ import annotations

import pytest
import torch

from audit.backends.hf import split_attention
from audit.backends.hf.scorer import Scorer
from audit.prompts.render import render_prompt
from audit.prompts.stopping import REASONING
from test_generation import hf_one_at_a_time
from test_scoring import ITEMS, SHOTS, gpt2, llama  # noqa: F401  (fixtures)


class _Layer:
    layer_idx, num_key_value_groups, is_causal, training = 0, 1, False, False


def _dense(query, pk, pv, key, value, seen, scale, softcap=None):
    """Reference: every row's keys = prefix + own, one float64 softmax over them."""
    n, heads, length, d = query.shape
    group = heads // key.shape[1]
    k = torch.cat([pk.expand(n, -1, -1, -1), key], dim=-2).repeat_interleave(group, dim=1).double()
    v = torch.cat([pv.expand(n, -1, -1, -1), value], dim=-2).repeat_interleave(group, dim=1).double()
    scores = query.double() @ k.transpose(-1, -2) * scale
    if softcap:
        scores = torch.tanh(scores / softcap) * softcap
    full = torch.cat([torch.ones(*seen.shape[:-1], pk.shape[-2], dtype=torch.bool), seen], dim=-1)
    scores = scores.masked_fill(~full, float("-inf"))
    return (scores.softmax(-1) @ v).transpose(1, 2)


@pytest.mark.parametrize("heads,kv_heads,length", [(4, 4, 1), (4, 2, 1), (6, 2, 3)])
@pytest.mark.parametrize("additive", [False, True])
@pytest.mark.parametrize("softcap", [None, 5.0])
def test_split_softmax_equals_attention_over_the_concatenation(heads, kv_heads, length, additive, softcap):
    g = torch.Generator().manual_seed(heads * 10 + kv_heads + length)
    n, m, w, d = 5, 7, 9, 8
    query = torch.randn(n, heads, length, d, generator=g)
    pk, pv = (torch.randn(1, kv_heads, m, d, generator=g) for _ in range(2))
    key, value = (torch.randn(n, kv_heads, w, d, generator=g) for _ in range(2))
    lengths = torch.tensor([1, 3, 9, 5, 2])
    seen = (torch.arange(w)[None, None, None, :] < lengths[:, None, None, None]).expand(n, 1, length, w)
    mask = seen if not additive else torch.zeros(seen.shape).masked_fill(~seen, torch.finfo(torch.float32).min)
    split_attention._active.append({"prefix": [(pk, pv)], "kernel": "sdpa"})
    try:
        out, _ = split_attention._split_attention(_Layer(), query, key, value, mask, scaling=0.3, softcap=softcap)
    finally:
        split_attention._active.pop()
    expected = _dense(query, pk, pv, key, value, seen, 0.3, softcap)
    assert out.shape == (n, length, heads, d)
    assert torch.allclose(out.double(), expected, atol=1e-5)


def test_settings_it_does_not_implement_fall_back_to_the_model_s_kernel():
    """Attention sinks or dropout: the model's own kernel on the prefix concatenated in front of the own columns."""
    g = torch.Generator().manual_seed(3)
    n, heads, m, w, d = 3, 4, 5, 6, 8
    query = torch.randn(n, heads, 1, d, generator=g)
    pk, pv = (torch.randn(1, heads, m, d, generator=g) for _ in range(2))
    key, value = (torch.randn(n, heads, w, d, generator=g) for _ in range(2))
    seen = (torch.arange(w)[None, None, None, :] < torch.tensor([2, 6, 4])[:, None, None, None])
    split_attention._active.append({"prefix": [(pk, pv)], "kernel": "sdpa"})
    try:
        out, _ = split_attention._split_attention(_Layer(), query, key, value, seen, scaling=0.3, sinks=None, dropout=0.0)
        calls = []
        real = split_attention._concatenated
        split_attention._concatenated = lambda *a, **k: calls.append(1) or real(*a, **k)
        try:
            fallback, _ = split_attention._split_attention(_Layer(), query, key, value, seen, scaling=0.3,
                                                           s_aux=torch.zeros(heads))
        finally:
            split_attention._concatenated = real
    finally:
        split_attention._active.pop()
    assert calls == [1]
    expected = _dense(query, pk, pv, key, value, seen, 0.3)
    assert torch.allclose(out.double(), expected, atol=1e-5)
    assert torch.allclose(fallback.double(), expected, atol=1e-5)


def test_the_model_s_attention_setting_is_restored(gpt2):
    model = gpt2.model
    before = model.config._attn_implementation
    prefix = [(torch.zeros(1, 1, 1, 1), torch.zeros(1, 1, 1, 1))]
    with pytest.raises(RuntimeError):
        with split_attention.shared_prefix(model, prefix):
            assert model.config._attn_implementation == split_attention.NAME
            raise RuntimeError("inside")
    assert model.config._attn_implementation == before and not split_attention._active


def test_prefix_is_held_once_and_tokens_equal_hf(gpt2, monkeypatch):
    """Prompts with a long common prefix (16 shots): the decoding slots hold only each prompt's own tokens and the
    budget, and the tokens are HF's one prompt at a time."""
    from audit.backends.hf import decoding
    from audit.backends.hf.tokenization import _encode_many

    made = []
    real = decoding.DecodingSlots.__init__

    def spy(self, slots, capacity, prefix_kv, m, device):
        made.append((slots, capacity, m))
        real(self, slots, capacity, prefix_kv, m, device)

    monkeypatch.setattr(decoding.DecodingSlots, "__init__", spy)
    prompts = [render_prompt("zero_shot", it, SHOTS).text for it in ITEMS[:6]]
    ours = Scorer(gpt2, batch_size=32).generate_tokens(prompts, 7, stop=REASONING)
    assert ours == [hf_one_at_a_time(gpt2, p, 7, REASONING) for p in prompts]
    slots, capacity, m = made[-1]
    seqs = _encode_many(gpt2.tokenizer, prompts)
    assert m > 100 and capacity == max(len(s) for s in seqs) - m + 7


def test_eager_attention_model_generates_hf_tokens(llama):
    """A model on eager attention (additive masks): the split path gives HF's tokens one prompt at a time."""
    from transformers import LlamaForCausalLM

    from audit.backends.hf.loading import LoadedModel

    model = LlamaForCausalLM._from_config(llama.model.config, attn_implementation="eager").eval()
    model.load_state_dict(llama.model.state_dict())
    lm = LoadedModel("llama-eager", model, llama.tokenizer, torch.device("cpu"))
    prompts = [render_prompt("zero_shot", it, SHOTS[:4]).text for it in ITEMS[:5]]
    scorer = Scorer(lm, batch_size=4)
    assert scorer.tree and model.config._attn_implementation == "eager"
    assert scorer.generate_tokens(prompts, 6) == [hf_one_at_a_time(lm, p, 6) for p in prompts]
