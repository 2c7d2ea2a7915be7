"""Tiny random-weight causal LMs for plumbing tests (no bias planted: the reference models do that)."""

from __future__ import annotations

from pathlib import Path

import torch


def build_word_tokenizer(texts: list[str]):
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders
    from transformers import PreTrainedTokenizerFast

    specials = ["[UNK]", "[PAD]", "<s>", "</s>"]
    words = sorted({w for t in texts for w in pre_tokenizers.Whitespace().pre_tokenize_str(t) for w in [w[0]]})
    vocab = {w: i for i, w in enumerate(specials + words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", bos_token="<s>", eos_token="</s>")


def build_tiny_llama(directory: Path, *, seed: int = 0, with_pad: bool = True, hidden_size: int = 32,
                     num_hidden_layers: int = 2) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    from audit.datasets.winobias.generated import generate_items
    from audit import prompt_formats, render_prompt

    items = generate_items()
    texts = [render_prompt(f, it, items[:2], "Be fair.").text + " " + " ".join(it.candidates) for f in prompt_formats() for it in items[:50]]
    texts += [o for it in items for o in it.candidates] + [it.sentence for it in items]
    tokenizer = build_word_tokenizer(texts)
    if not with_pad:
        tokenizer.pad_token = None
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size, num_hidden_layers=num_hidden_layers,
        num_attention_heads=4,
        num_key_value_heads=4, max_position_embeddings=2048, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
