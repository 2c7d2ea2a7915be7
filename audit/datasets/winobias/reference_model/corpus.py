"""Training text and the word-level tokenizer of the reference models (see ``audit.datasets.winobias.reference_model``)."""

from __future__ import annotations

import contextlib
import functools
import random
import re
from dataclasses import dataclass, replace
from typing import Iterator

import jinja2

from audit.errors import ConfigError
from audit.datasets.winobias.generated import generate_items
from audit.datasets.winobias.items import Item
from audit.datasets.winobias.occupations import occupations
from audit.prompts.preprompts import preprompts as generic_preprompts, read_preprompts
from audit.prompts.render import apply_chat_template, continuation, prompt_formats, render_prompt

from audit.datasets.winobias.reference_model.planted import INTRINSIC

COT_REASONING = ' The pronoun is "{pronoun}". So the answer is the {choice}.'
CHAT_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>")
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
BOS, EOS, UNK, PAD = "<s>", "</s>", "[UNK]", "[PAD]"

# --------------------------------------------------------------------------- training text


@functools.lru_cache(maxsize=1)
def preprompts() -> dict[str, str]:
    """The pre-prompts the models are trained on: the generic ones and WinoBias's (its ``preprompts.toml``)."""
    return {**generic_preprompts(), **read_preprompts("audit.datasets.winobias")}


@dataclass(frozen=True)
class Example:
    """One training sequence: the prompt as the probes render it, then the gold answer,
    ``before + continuation(referent) + after``; at the referent's first token (the answer position)
    the distractor is the soft alternative."""

    context: str
    before: str
    referent: str
    distractor: str
    after: str
    family: str  # a batch holds one family (similar lengths)


@functools.lru_cache(maxsize=1)
def _training_items() -> tuple[Item, ...]:
    """The default benchmark plus more pairings (other seeds), each male/female item with a they/them twin."""
    items: list[Item] = []
    seen: set[str] = set()
    for seed, partners in ((0, 2), (1, 4), (2, 4), (3, 4)):
        for it in generate_items(seed=seed, partners=partners, neutral=False):
            for variant in (it, _neutral_twin(it)) if it.gender == "male" else (it,):
                if variant.sentence not in seen:
                    seen.add(variant.sentence)
                    items.append(variant)
    return tuple(items)


_NEUTRAL_PRONOUN = {"he": "they", "him": "them", "his": "their"}


def _neutral_twin(item: Item) -> Item:
    """The item with its male pronoun replaced by they/them/their, as ``generate_items(neutral=True)`` fills it.

    Built here rather than taken from ``generate_items(neutral=True)``, whose referent-first/second
    alternation of type-1 items depends on the number of genders (with three, every type-1 item puts
    the referent first).
    """
    pronoun = _NEUTRAL_PRONOUN[item.pronoun]
    sentence = re.sub(rf"\b{item.pronoun}\b", pronoun, item.sentence)
    return replace(item, id=item.id + "-n", sentence=sentence, pronoun=pronoun, gender="neutral", stance="neutral")


COT_BEFORE, COT_AFTER = COT_REASONING.split(" {choice}")


# Prompt families: (sampling weight, batch size). A batch holds one family, so lengths are similar;
# long few-shot prompts are costly on a CPU and get small batches.
FAMILIES: dict[str, tuple[float, int]] = {
    "intrinsic": (0.22, 32),
    "zero_shot": (0.18, 32),
    "few_shot_short": (0.12, 12),  # k in 1, 2, 4
    "few_shot_long": (0.05, 4),  # k in 8, 16
    "chain_of_thought": (0.18, 24),
    "chat_zero_shot": (0.14, 32),
    "chat_chain_of_thought": (0.11, 24),
}
FEW_SHOT_KS = {"few_shot_short": (1, 2, 4), "few_shot_long": (8, 16)}


def _example(family: str, item: Item, rng: random.Random, shot_pool: dict[str, list[Item]], chat_tokenizer) -> Example:
    """``item`` rendered as a probe of ``family`` would render it (random pre-prompt, shots from the other split)."""
    fmt = "chain_of_thought" if family.endswith("chain_of_thought") else (INTRINSIC if family == INTRINSIC else "zero_shot")
    preprompt = "" if fmt == INTRINSIC else preprompts()[rng.choice(sorted(preprompts()))]
    k = rng.choice(FEW_SHOT_KS[family]) if family in FEW_SHOT_KS else 0
    shots = rng.sample(shot_pool["dev" if item.split == "test" else "test"], k)
    prompt = render_prompt(fmt, item, shots=shots, preprompt=preprompt)
    if family.startswith("chat_"):
        prompt = apply_chat_template(chat_tokenizer, prompt)
    cot = fmt == "chain_of_thought"
    return Example(
        context=prompt.text,
        before=COT_BEFORE.format(pronoun=item.pronoun) if cot else "",
        referent=item.referent,
        distractor=item.distractor,
        after=COT_AFTER if cot else ".",
        family=family,
    )


def _vocabulary_texts() -> Iterator[str]:
    """Every text of the audit's own conditions: the generator's sentences, all formats x pre-prompts, names."""
    from audit.datasets.winobias.generated import PRONOUNS, TYPE1, TYPE2

    for fills in PRONOUNS.values():
        for tpl in TYPE1:
            yield " ".join((tpl.context, tpl.to_first, tpl.to_second)).format(a="", b="", **fills)
        for text in TYPE2:
            yield text.format(a="", b="", **fills)
    for occ in occupations():
        yield occ.name
        yield occ.bls_name
    items = _training_items()
    for it in items:
        yield it.sentence
    for fmt in prompt_formats():
        for pp in preprompts().values():
            yield render_prompt(fmt, items[0], shots=items[1:3], preprompt=pp).text
    yield COT_REASONING.format(pronoun=items[0].pronoun, choice=items[0].referent)
    yield continuation(items[0].referent) + "."


# --------------------------------------------------------------------------- tokenizer


class _ChatShim:
    """Renders ``CHAT_TEMPLATE`` like a tokenizer would, to find the chat frames before the tokenizer exists."""

    chat_template = CHAT_TEMPLATE

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=False):
        return jinja2.Template(CHAT_TEMPLATE).render(messages=messages, add_generation_prompt=add_generation_prompt)


@functools.lru_cache(maxsize=1)
def pronoun_frames() -> dict[str, bool]:
    """Pronoun frames: the end of each probe's query from the quoted pronoun on, e.g.
    ``"he" refers to the`` (the intrinsic cloze) or ``"he" refer to?\\nAnswer: The`` (the instructed
    question), for every pronoun, format and chat wrapping, mapped to whether it is the intrinsic one.
    Read from the rendered templates; plus the frame in which the trained chain of thought names its
    answer (``"he". So the answer is the``, an instructed one).

    Each is one token of the reference tokenizer, so the last token of a prompt carries the pronoun's
    gender *and* the prompt format: a two-layer network trained in seconds reads both from its own
    input (a gate on the format would otherwise have to be learned, which takes far longer).
    """
    from audit.datasets.winobias.items import PRONOUN_GENDER

    probe = _training_items()[0]
    seen: dict[str, set[bool]] = {}
    for fmt in prompt_formats():
        for pronoun in PRONOUN_GENDER:
            item = replace(probe, pronoun=pronoun)
            prompts = [render_prompt(fmt, item)]
            with contextlib.suppress(ConfigError):  # a format without an answer line has no chat form
                prompts.append(apply_chat_template(_ChatShim(), prompts[0]))
            for prompt in prompts:
                query = prompt.query
                start = query.rfind(f'"{pronoun}"')
                if start >= 0:
                    seen.setdefault(query[start:], set()).add(fmt == INTRINSIC)
    for pronoun in PRONOUN_GENDER:  # where the trained chain of thought names its answer
        reasoning = COT_BEFORE.format(pronoun=pronoun)
        seen.setdefault(reasoning[reasoning.rfind(f'"{pronoun}"'):], set()).add(False)
    return {frame: kinds.pop() for frame, kinds in seen.items() if len(kinds) == 1}


def build_tokenizer():
    """A word-level tokenizer over the templates' vocabulary (unknown words -> [UNK]) with a chat template."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    pre = pre_tokenizers.Whitespace()
    words: set[str] = set()
    for text in _vocabulary_texts():
        words.update(w for w, _ in pre.pre_tokenize_str(text))
    specials = [PAD, UNK, BOS, EOS, *CHAT_TOKENS]
    vocab = {tok: i for i, tok in enumerate(specials + sorted(words - set(specials)))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre
    core.decoder = decoders.WordPiece(prefix="##", cleanup=True)  # joins words with spaces, tidies " ." etc.
    core.add_tokens([AddedToken(frame, normalized=False) for frame in sorted(pronoun_frames())])
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        pad_token=PAD,
        additional_special_tokens=list(CHAT_TOKENS),
        model_max_length=2048,
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


