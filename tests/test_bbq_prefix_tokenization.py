"""A shared prefix's head tokenised once (``audit.backends.hf.prefix_split``) gives exactly lm-eval's tokens:
the context alone and the context with its continuation, each encoded whole. Checked on the official BBQ
items' few-shot prompts with a word-level tokenizer (the reference models' kind, added tokens included),
against a byte-level BPE that the proof does not cover (encoded whole), and against a split the guard
must catch. And the reference models' one-thread scorer gives the same scores as the default one."""

from __future__ import annotations

import random

import pytest
import torch

from audit import Request
from audit.backends.hf import prefix_split
from audit.backends.hf.tokenization import _encode_many, _split_spaces, tokenize_requests

FRAMES = ['"he" refer to?\nAnswer: The', "<|user|>", "Answer: unknown"]  # added tokens, one of them common


def _whole(tokenizer, requests):
    """lm-eval's definition, every text encoded whole."""
    out = []
    for r in requests:
        c, k = _split_spaces(r.context, r.continuation)
        ctx, both = _encode_many(tokenizer, [c, c + k])
        out.append((ctx, both[len(ctx):]))
    return out


def _prompts(n: int, seed: int):
    """Few-shot-like BBQ prompts: a prefix of real contexts and questions, then each item's own."""
    from shared_data import bbq_dir

    rng = random.Random(seed)
    folder = bbq_dir()
    if folder is not None:
        from audit.datasets.bbq.official import parse_directory

        items = [it for group in parse_directory(folder / "data", ["Age", "Religion"]).values() for it in group]
        texts = [f"Context: {it.context}\nQuestion: {it.question}\nAnswer:" for it in rng.sample(items, 40)]
        answers = [a for it in items[:50] for a in it.answers]
    else:
        words = "the old man young woman who was forgetful grandson grandfather cannot be determined".split()
        texts = [" ".join(rng.choice(words) for _ in range(30)) + "\nAnswer:" for _ in range(40)]
        answers = words
    shots = "\n\n".join(t + " " + rng.choice(answers) for t in texts[:8])
    prefix = f"Answer the question.\n\n{shots}\n\n"
    return [Request(prefix, q, " " + a) for q in texts[8 : 8 + n] for a in rng.sample(answers, 3)], texts


def _word_tokenizer(texts):
    from tokenizers import AddedToken
    from tiny_models import build_word_tokenizer

    tok = build_word_tokenizer(texts)
    tok.add_tokens([AddedToken(f, normalized=False) for f in FRAMES])
    return tok


def test_word_level_prefix_split_equals_whole_encoding():
    requests, texts = _prompts(30, 0)
    tok = _word_tokenizer(texts + [r.continuation for r in requests])
    assert prefix_split.splittable(tok)
    head = prefix_split.split_at(tok, requests[0].prefix)
    assert 0 < head < len(requests[0].prefix)
    assert tokenize_requests(tok, requests) == _whole(tok, requests)
    assert prefix_split.splittable(tok)  # the guard agreed


def test_split_point_keeps_added_tokens_away():
    """An added token near the prefix's end (or one whose text spans a whitespace) is never cut: the split
    moves before it, and the tokens still match whole encoding."""
    requests, texts = _prompts(10, 1)
    tok = _word_tokenizer(texts)
    for tail in ('Who did "he" refer to?\nAnswer: The', "Answer: unknown\n\n", "<|user|>\n"):
        reqs = [Request(r.prefix + tail, r.query, r.continuation) for r in requests]
        s = prefix_split.split_at(tok, reqs[0].prefix)
        reach = max(len(f) for f in FRAMES) + 1  # the longest added token, and one character
        assert 0 < s <= len(reqs[0].prefix) - reach
        assert not any(f in reqs[0].prefix[s - reach : s + reach] for f in FRAMES)
        assert tokenize_requests(tok, reqs) == _whole(tok, reqs)


def test_byte_level_bpe_is_encoded_whole(monkeypatch):
    """GPT-2-style byte-level BPE attaches spaces and newlines to the next piece: not covered, not split."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    requests, texts = _prompts(10, 2)
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw)
    assert not prefix_split.splittable(tok)
    monkeypatch.setattr(prefix_split, "split_at", lambda *a: pytest.fail("split_at asked for a byte-level BPE"))
    assert tokenize_requests(tok, requests) == _whole(tok, requests)


def test_guard_catches_a_wrong_split_and_stops_splitting(monkeypatch):
    """A split inside a word (what a misread pipeline could produce) changes the tokens: the guard compares
    the first text whole, encodes the whole call whole, and never splits for that tokenizer again."""
    requests, texts = _prompts(10, 3)
    tok = _word_tokenizer(texts)
    prefix = requests[0].prefix
    inside = prefix.index("Answer the") + 3  # "Ans|wer"
    monkeypatch.setattr(prefix_split, "split_at", lambda t, p: inside)
    assert tokenize_requests(tok, requests) == _whole(tok, requests)
    assert not prefix_split.splittable(tok)
    assert tokenize_requests(tok, requests) == _whole(tok, requests)


def test_one_thread_scorer_scores_as_the_default_and_restores_threads(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from audit.backends.hf.loading import LoadedModel
    from audit.backends.hf.scorer import Scorer
    from audit.datasets.winobias.reference_model.threads import OneThreadScorer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    loaded = LoadedModel("tiny", model, AutoTokenizer.from_pretrained(tiny_model_dir), torch.device("cpu"))
    from audit.datasets.winobias.generated import generate_items
    from audit import render_prompt
    from audit.prompts.render import continuation

    items = generate_items(0)[:12]
    requests = []
    for it in items:
        p = render_prompt("zero_shot", it, generate_items(0)[300:302])
        requests += [Request(p.prefix, p.query, continuation(c)) for c in it.candidates]
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        ours = OneThreadScorer(loaded).loglikelihood(requests)
        assert torch.get_num_threads() == 2
        assert ours == Scorer(loaded).loglikelihood(requests)
    finally:
        torch.set_num_threads(before)
