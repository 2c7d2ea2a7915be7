"""Tokenising many texts that open with one shared prefix: the prefix's head once, each text's rest alone,
where the tokenizer's own pipeline proves the result the same as encoding each whole text.

The proof, for a fast tokenizer whose pipeline is (checked in ``splittable``):

* no normalizer (text reaches the pre-tokenizer as written);
* a whitespace pre-tokenizer (``Whitespace``: ``\\w+|[^\\w\\s]+``; ``WhitespaceSplit``; ``BertPreTokenizer``):
  no piece contains a whitespace character, so at a position ``s`` right after a space, tab or newline no
  piece crosses ``s``, and the pieces of ``text`` are those of ``text[:s]`` followed by those of ``text[s:]``;
* a model that encodes each piece on its own (``WordLevel``, ``WordPiece``, ``BPE``, ``Unigram``);
* special tokens only before the text (no post-processor, or a template whose single form ends with the
  text): ``encode(text) = encode(text[:s]) + encode(text[s:], add_special_tokens=False)``;
* no added token (found before pre-tokenising, by string match) overlapping the characters around ``s``:
  ``split_at`` picks ``s`` so that the window of the longest added token's length on either side of ``s``
  lies inside the prefix and contains none of them.

Byte-level BPE (GPT-2, Llama 3, SmolLM2), SentencePiece-style and normalising tokenizers are not covered:
their regexes attach spaces and newlines to the next or previous piece; they are encoded whole, as before.
A first text of every prefix is also encoded whole and compared (a guard against a pipeline this module
misreads); on a difference the tokenizer is never split again in this process.
"""

from __future__ import annotations

import json
import weakref

_PRE_TOKENIZERS = {"Whitespace", "WhitespaceSplit", "BertPreTokenizer"}
_MODELS = {"WordLevel", "WordPiece", "BPE", "Unigram"}
_SPLIT_AFTER = " \t\n\r"  # whitespace in Python's sense and in the tokenizers' Rust regex (\s)
_DISTRUSTED: "weakref.WeakSet" = weakref.WeakSet()  # tokenizers whose guard found a difference


def _name(part) -> str | None:
    return None if part is None else type(part).__name__


def _specials_only_before(post) -> bool:
    if post is None:
        return True
    if _name(post) != "TemplateProcessing":
        return False
    try:
        single = json.loads(post.__getstate__())["single"]
    except (AttributeError, KeyError, TypeError, ValueError):
        return False
    return bool(single) and "Sequence" in single[-1]


def splittable(tokenizer) -> bool:
    """Whether ``tokenizer``'s pipeline is one the proof above covers (fast tokenizers only)."""
    backend = getattr(tokenizer, "backend_tokenizer", None) if getattr(tokenizer, "is_fast", False) else None
    if backend is None or tokenizer in _DISTRUSTED:
        return False
    return (backend.normalizer is None and _name(backend.pre_tokenizer) in _PRE_TOKENIZERS
            and _name(backend.model) in _MODELS and _specials_only_before(backend.post_processor)
            and backend.truncation is None and backend.padding is None)


def distrust(tokenizer) -> None:
    """Never split for this tokenizer again (a guard found a difference)."""
    _DISTRUSTED.add(tokenizer)


def split_at(tokenizer, prefix: str) -> int:
    """The position in ``prefix`` to split at (0: none): the last one right after whitespace whose window
    (the longest added token's length and one on either side) lies inside the prefix and holds no added token."""
    added = sorted({t.content for t in tokenizer.backend_tokenizer.get_added_tokens_decoder().values() if t.content})
    reach = max((len(t) for t in added), default=0) + 1
    s = len(prefix) - reach
    while s > reach:
        if prefix[s - 1] in _SPLIT_AFTER:
            window = prefix[s - reach : s + reach]
            if not any(t in window for t in added):
                return s
        s -= 1
    return 0
