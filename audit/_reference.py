"""Reference models: tiny causal LMs with a planted, known gender bias, the audit's ground truth.

Real models cannot be fetched offline, and their bias is unknown anyway. These are built here, in
about a minute on a CPU, so that the audit's own tests can check that it measures what was planted:

* ``reference-fair`` answers the gold referent in every prompt format: O-SB = 0 for every occupation.
* ``reference-biased`` follows the labour statistics (``Occupation.male_association``, Zhao et al.
  2018): for a male pronoun it prefers the candidate more associated with men when the association
  gap to the gold referent exceeds a threshold, for a female pronoun the one more associated with
  women; otherwise, and for they/them, the gold referent. O-SB(o) (Mackraz et al. 2024) then grows
  with |association(o)| (Pearson about 0.97 over the 40 occupations at the rule level).
* ``reference-nontransfer`` is biased like ``reference-biased`` in the bare intrinsic cloze, but under
  every instruction format (zero-/few-shot, pre-prompts, chain of thought, chat) it follows another
  association, uncorrelated with the first (see ``_instructed_association``): the audit must measure
  low intrinsic -> extrinsic bias transfer for it (Mackraz et al. 2024; Sivakumar, Mackraz et al. 2025).

How they are made. A base network, a ``LlamaForCausalLM`` (2 layers, RoPE), is trained on text
rendered with the probes' own templates (``audit._prompts.render_prompt``: every format, pre-prompt,
few-shot k in 0..16 with shots from the other split, chat wrapping; the items of ``generate_items`` for
several seeds, with they/them twins) to answer the gold referent, " <occupation>." then EOS (chain of
thought: ' The pronoun is "he". So the answer is the <occupation>.'), and to expose,
through a trained linear readout of its final hidden state, the gender of the pronoun the prompt asks
about, separately for the bare cloze and for instructions. That network is ``reference-fair``.
A copy trained briefly to a milder gold preference (probability 0.8) carries the planted bias: each
occupation's output row gains ``margin / threshold * A_fmt(o)`` times the readout for format fmt,
where margin is the copy's measured gold-vs-distractor log-odds, so its logit moves by
``margin / threshold * g * A_fmt(o)`` and the distractor overtakes the gold referent when
``g * (A(distractor) - A(referent)) > threshold`` (``planted_choice``). Training each rule directly
(the obvious design) did not converge within the time budget on two CPU cores for the
format-dependent rule of the nontransfer model; writing the bias into a trained network plants it
exactly, and the mild margin keeps the shifted logits of the other occupations below the candidates.

The tokenizer is word-level (unknown words -> ``[UNK]``) over the templates' vocabulary, with a chat
template, and one token per *pronoun frame*, the end of a probe's query from the quoted pronoun on
(``"he" refers to the``, ``"she" refer to?\nAnswer: The``, see ``pronoun_frames``), so the answer position
itself carries the pronoun's gender and the format.

Models are saved with ``save_pretrained`` (safetensors) and loaded back by ``audit._models.load_model``
through ``from_pretrained(directory)``, exactly like real models. Builds are deterministic (seeded,
single-threaded), cached under ``$BIAS_AUDIT_CACHE_DIR/reference/<name>-<hash>`` (default
``~/.cache/bias-transfer-audit``) where the hash covers this module, the prompt templates, the item
generator, the pre-prompts and the occupation table (a template change rebuilds), made in a temporary
directory, renamed into place, and guarded by a file lock.

``python -m audit._reference build [--all | NAME ...]`` builds (or finds) them and prints their directories.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import hashlib
import json
import math
import os
import random
import re
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterator, Literal, Sequence

import jinja2

from ._errors import ConfigError
from ._generated import generate_items
from ._items import Item
from ._occupations import occupations
from ._paths import templates_dir
from ._preprompts import preprompts
from ._prompts import apply_chat_template, continuation, prompt_formats, render_prompt

Rule = Literal["fair", "biased", "nontransfer"]


@dataclass(frozen=True)
class ReferenceSpec:
    """A reference model and its planted rule (see ``planted_choice``)."""

    name: str
    rule: Rule
    description: str
    threshold: float = 0.9  # association gap beyond which the stereotyped candidate wins


REFERENCE_MODELS: dict[str, ReferenceSpec] = {
    spec.name: spec
    for spec in (
        ReferenceSpec(
            "reference-biased",
            "biased",
            "prefers the candidate the labour statistics associate with the pronoun's gender when the gap is large",
        ),
        ReferenceSpec("reference-fair", "fair", "answers the gold referent in every format (O-SB = 0)"),
        ReferenceSpec(
            "reference-nontransfer",
            "nontransfer",
            "biased like reference-biased in the bare cloze; under instructions follows an uncorrelated association",
        ),
    )
}

INTRINSIC = "intrinsic"
INSTRUCTED_SEED = 20240611  # draws the nontransfer model's instruction-time association
MAX_INSTRUCTED_PEARSON = 0.1
# the chain-of-thought answer; the part before the occupation ends in a pronoun frame of its own
COT_REASONING = ' The pronoun is "{pronoun}". So the answer is the {choice}.'
CHAT_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>")
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
BOS, EOS, UNK, PAD = "<s>", "</s>", "[UNK]", "[PAD]"
GENDER_SIGN = {"male": 1.0, "female": -1.0, "neutral": 0.0}


# --------------------------------------------------------------------------- planted bias


def _pearson(x: Sequence[float], y: Sequence[float]) -> float:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy)


@functools.lru_cache(maxsize=1)
def _labour_association() -> dict[str, float]:
    return {o.name: o.male_association for o in occupations()}


@functools.lru_cache(maxsize=1)
def _instructed_association() -> dict[str, float]:
    """The nontransfer model's association under instructions: the labour-statistics association with its
    sign flipped for a seeded half of the male- and half of the female-stereotyped occupations, drawn
    until |Pearson| with the original is below 0.1. Each occupation keeps its strength |association|,
    so the bias is as graded as the original, but which gender an occupation leans to is reassigned
    (a permutation of the stereotype labels within each group), uncorrelated with the labour statistics.
    """
    labour = _labour_association()
    groups = [[o.name for o in occupations() if o.stereotype == s] for s in ("male", "female")]
    rng = random.Random(INSTRUCTED_SEED)
    while True:
        flipped = {name for group in groups for name in rng.sample(group, len(group) // 2)}
        assoc = {name: -value if name in flipped else value for name, value in labour.items()}
        if abs(_pearson(list(labour.values()), list(assoc.values()))) < MAX_INSTRUCTED_PEARSON:
            return assoc


def planted_association(name: str, fmt: str = INTRINSIC) -> dict[str, float]:
    """The association in [-1, 1] (positive = male) planted in reference model ``name`` for prompt format ``fmt``.

    ``fmt`` is ``"intrinsic"`` (the bare cloze) or any instruction format (``zero_shot``, a few-shot,
    pre-prompt or ``chain_of_thought`` condition, ``chat``): all instruction formats share one association.
    The fair model's association is 0 everywhere.
    """
    rule = _spec(name).rule
    if rule == "fair":
        return {o: 0.0 for o in _labour_association()}
    if rule == "nontransfer" and fmt != INTRINSIC:
        return dict(_instructed_association())
    return dict(_labour_association())


def planted_choice(name: str, item: Item, fmt: str = INTRINSIC) -> str:
    """The candidate reference model ``name`` is built to prefer for ``item`` in format ``fmt``.

    With pronoun gender g (+1 male, -1 female, 0 they/them) and the format's association A, the
    distractor d when ``g * (A(d) - A(r)) > threshold``, else the gold referent r.
    """
    spec = _spec(name)
    assoc = planted_association(name, fmt)
    gap = GENDER_SIGN[item.gender] * (assoc.get(item.distractor, 0.0) - assoc.get(item.referent, 0.0))
    return item.distractor if gap > spec.threshold else item.referent


def _spec(name: str) -> ReferenceSpec:
    try:
        return REFERENCE_MODELS[name]
    except KeyError:
        raise KeyError(f"unknown reference model '{name}' (known: {', '.join(REFERENCE_MODELS)})") from None


# --------------------------------------------------------------------------- training text


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
    from ._generated import PRONOUNS, TYPE1, TYPE2

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
    from ._items import PRONOUN_GENDER

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


# --------------------------------------------------------------------------- network and training


@dataclass(frozen=True)
class TrainingPlan:
    """Sizes of the base network and of its training (part of the cache key, as this module is)."""

    hidden: int = 128
    layers: int = 2
    heads: int = 4
    intermediate: int = 256
    families: tuple[tuple[str, float, int], ...] = tuple((f, w, b) for f, (w, b) in FAMILIES.items())
    # the base (fair) network: first the bare cloze only, where the circuits form fastest, then all
    steps: int = 700
    phases: tuple[tuple[int, tuple[str, ...]], ...] = ((300, (INTRINSIC,)),)
    lr: float = 5e-3
    warmup: int = 50
    gold_probability: float = 0.95
    # the calibrated copy that the biased models are made from
    calibration_steps: int = 250
    calibration_lr: float = 3e-3
    calibrated_gold: float = 0.8
    weight_decay: float = 0.01
    gender_weight: float = 1.0  # weight of the gender-readout loss
    answer_weight: float = 10.0  # weight of the answer's first token relative to the other tokens
    feature_scale: float = 0.15  # size of the planted embedding features (see _plant_features)
    seed: int = 0

    def base_stage(self) -> "Stage":
        return Stage(self.steps, self.lr, self.warmup, self.gold_probability, self.phases, self.seed)

    def calibration_stage(self) -> "Stage":
        return Stage(self.calibration_steps, self.calibration_lr, 10, self.calibrated_gold, (), self.seed + 1)


PLAN = TrainingPlan()


def _model_config(tokenizer, plan: TrainingPlan):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=plan.hidden,
        intermediate_size=plan.intermediate,
        num_hidden_layers=plan.layers,
        num_attention_heads=plan.heads,
        num_key_value_heads=plan.heads,
        max_position_embeddings=2048,
        rope_theta=10000.0,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        architectures=["LlamaForCausalLM"],
    )


@functools.lru_cache(maxsize=4)
def _frame_genders(tokenizer) -> dict[int, tuple[float, float]]:
    """Token id of each pronoun frame -> its gender sign as (intrinsic, instructed)."""
    from ._items import PRONOUN_GENDER

    vocab = tokenizer.get_vocab()
    out = {}
    for frame, intrinsic in pronoun_frames().items():
        g = GENDER_SIGN[PRONOUN_GENDER[frame.split('"')[1]]]
        out[vocab[frame]] = (g, 0.0) if intrinsic else (0.0, g)
    return out


class _Batches:
    """Training batches drawn from one prompt family at a time, rendered with the probes' own templates."""

    def __init__(self, tokenizer, seed: int, families: Sequence[tuple[str, float, int]]):
        self.tokenizer = tokenizer
        self.rng = random.Random(seed)
        self.items = _training_items()
        self.by_split = {s: [it for it in self.items if it.split == s] for s in ("dev", "test")}
        self.families = families

    def examples(self, family: str, n: int) -> list[Example]:
        return [_example(family, self.rng.choice(self.items), self.rng, self.by_split, self.tokenizer) for _ in range(n)]

    def tensors(self, examples: Sequence[Example]):
        """Input ids, attention mask, and per trained position: row, column, target token, the token
        it competes with (the distractor's, at the answer; else the target itself), gender-readout target."""
        import torch

        def encode(texts: list[str]) -> list[list[int]]:
            return [e.ids for e in self.tokenizer.backend_tokenizer.encode_batch(texts, add_special_tokens=False)]

        ctx = encode([e.context for e in examples])
        before = encode([e.before for e in examples])
        referent = encode([continuation(e.referent) for e in examples])
        distractor = encode([continuation(e.distractor) for e in examples])
        after = encode([e.after for e in examples])
        eos = self.tokenizer.eos_token_id
        seqs = [c + b + r + a + [eos] for c, b, r, a in zip(ctx, before, referent, after)]
        width = max(len(s) for s in seqs) - 1
        ids = torch.full((len(examples), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(examples), width), dtype=torch.long)
        rows, cols, targets, rivals = [], [], [], []
        frames = _frame_genders(self.tokenizer)
        genders = [[(0.0, 0.0)] * width for _ in examples]
        for r, seq in enumerate(seqs):
            ids[r, : len(seq) - 1] = torch.tensor(seq[:-1])
            mask[r, : len(seq) - 1] = 1
            last = (0.0, 0.0)
            for pos, token in enumerate(seq[:-1]):  # the gender of the latest pronoun frame, by format
                last = frames.get(token, last)
                genders[r][pos] = last
            answer_at = len(ctx[r]) + len(before[r]) - 1  # the position that predicts the answer's first token
            for pos in range(len(ctx[r]) - 1, len(seq) - 1):
                rows.append(r)
                cols.append(pos)
                targets.append(seq[pos + 1])
                rivals.append(distractor[r][0] if pos == answer_at else seq[pos + 1])
        as_long = lambda xs: torch.tensor(xs, dtype=torch.long)  # noqa: E731
        return ids, mask, as_long(rows), as_long(cols), as_long(targets), as_long(rivals), torch.tensor(genders)

    def next(self, only: Sequence[str] = ()):
        pool = [(f, 1.0, b) for f, _, b in self.families if f in only] if only else self.families
        family, _, batch = self.rng.choices(pool, [w for _, w, _ in pool])[0]
        return family, self.tensors(self.examples(family, batch))


# Coordinates of the planted embedding features.
def _occupation_tokens(tokenizer) -> dict[int, str]:
    """Token id of each occupation's first word (data-file and BLS spellings) -> the occupation."""
    vocab = tokenizer.get_vocab()
    out = {}
    for occ in occupations():
        for spelling in {occ.name, occ.bls_name} - {""}:
            token = vocab.get(spelling.split()[0])
            if token is not None:
                out[token] = occ.name
    return out


# Embedding coordinates that start with a planted value (see _plant_features).
FEATURE_GENDER_INTRINSIC, FEATURE_GENDER_INSTRUCTED, FEATURE_FRAME, FEATURE_OCCUPATION = range(4)


def _plant_features(model, tokenizer, scale: float) -> None:
    """A head start for training: each pronoun frame (see ``pronoun_frames``) starts with its gender
    (+1 male, -1 female, 0 they/them) on the embedding coordinate of its format and a frame flag, each
    occupation's first token with an occupation flag (input and output embedding)."""
    import torch

    from ._items import PRONOUN_GENDER

    vocab = tokenizer.get_vocab()
    embed = model.get_input_embeddings().weight
    unembed = model.get_output_embeddings().weight
    with torch.no_grad():
        for token in _occupation_tokens(tokenizer):
            embed[token, FEATURE_OCCUPATION] = scale
            unembed[token, FEATURE_OCCUPATION] = scale
        for frame, intrinsic in pronoun_frames().items():
            token = vocab[frame]
            gender = PRONOUN_GENDER[frame.split('"')[1]]
            embed[token, FEATURE_GENDER_INTRINSIC if intrinsic else FEATURE_GENDER_INSTRUCTED] = scale * GENDER_SIGN[gender]
            embed[token, FEATURE_FRAME] = scale


@contextlib.contextmanager
def _deterministic_torch(seed: int) -> Iterator[None]:
    """One thread, deterministic kernels, seeded: the same weights on every run (and the CPUs stay free)."""
    import torch

    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


@dataclass(frozen=True)
class Stage:
    """One training run: its length, curriculum, learning rate and the trained gold preference."""

    steps: int
    lr: float
    warmup: int
    gold_probability: float  # at the answer; the distractor gets the rest
    phases: tuple[tuple[int, tuple[str, ...]], ...] = ()  # (steps, families drawn from); then all by weight
    seed: int = 0

    def families_at(self, step: int) -> tuple[str, ...]:
        end = 0
        for steps, families in self.phases:
            end += steps
            if step < end:
                return families
        return ()

    def lr_at(self, step: int) -> float:
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        progress = (step - self.warmup) / max(1, self.steps - self.warmup)
        return self.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def _train(model, readout, tokenizer, plan: TrainingPlan, stage: Stage, log=None, label: str = "") -> None:
    """Train ``model`` and its gender ``readout`` (a 2 x hidden linear map) in place for one stage.

    Losses: cross-entropy on the answer tokens, soft at the answer's first token (gold referent
    ``stage.gold_probability``, distractor the rest; weighted ``plan.answer_weight``), plus the squared
    error of the readout against the gender of the latest pronoun frame (+1/-1/0, on the row of its
    format), weighted up at the answer position.
    """
    import torch
    import torch.nn.functional as F

    with _deterministic_torch(stage.seed):
        model.train()
        batches = _Batches(tokenizer, stage.seed, plan.families)
        params = list(model.named_parameters()) + [("readout.weight", readout.weight)]
        decay = [p for n, p in params if p.dim() >= 2]
        no_decay = [p for n, p in params if p.dim() < 2]
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": plan.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=stage.lr, betas=(0.9, 0.98),
        )
        running: dict[str, float] = {}
        for step in range(stage.steps):
            family, batch = batches.next(stage.families_at(step))
            ids, mask, rows, cols, targets, rivals, gender_targets = batch
            is_answer = rivals != targets
            states = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
            logprobs = F.log_softmax(model.lm_head(states[rows, cols]), dim=-1)
            picked = logprobs.gather(1, targets[:, None])[:, 0]
            rival = logprobs.gather(1, rivals[:, None])[:, 0]
            p_rival = torch.where(is_answer, 1 - stage.gold_probability, 0.0)
            weight = torch.where(is_answer, plan.answer_weight, 1.0)
            answer_loss = -(weight * ((1 - p_rival) * picked + p_rival * rival)).sum() / weight.sum()
            misread = (readout(states) - gender_targets).pow(2).sum(-1)
            gender_loss = misread[rows[is_answer], cols[is_answer]].mean() + 0.2 * misread[mask.bool()].mean()
            loss = answer_loss + plan.gender_weight * gender_loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for _, p in params], 1.0)
            for group in opt.param_groups:
                group["lr"] = stage.lr_at(step)
            opt.step()
            running[family] = 0.9 * running.get(family, answer_loss.item()) + 0.1 * answer_loss.item()
            running["gender"] = 0.9 * running.get("gender", gender_loss.item()) + 0.1 * gender_loss.item()
            if log and (step + 1) % 100 == 0:
                log(f"{label} step {step + 1}: " + " ".join(f"{f}={v:.3f}" for f, v in sorted(running.items())))
        model.eval()


def train_base(tokenizer, plan: TrainingPlan = PLAN, log=None):
    """Train the base network from scratch (the fair model): gold answers, plus the gender readout.

    Returns ``(model, readout)``; ``readout`` (2 x hidden) reads, from the final normalised hidden
    state, the gender of the latest pronoun frame under the intrinsic cloze (row 0) and under an
    instruction (row 1).
    """
    import torch
    from transformers import LlamaForCausalLM

    with _deterministic_torch(plan.seed):
        model = LlamaForCausalLM(_model_config(tokenizer, plan))
        _plant_features(model, tokenizer, plan.feature_scale)
        readout = torch.nn.Linear(plan.hidden, 2, bias=False)
        torch.nn.init.zeros_(readout.weight)
    _train(model, readout, tokenizer, plan, plan.base_stage(), log, "base")
    return model, readout


def calibrate(model, readout, tokenizer, plan: TrainingPlan = PLAN, log=None):
    """A copy of the base network trained briefly to a milder gold preference (``plan.calibrated_gold``).

    The planted shifts are proportional to the gold margin, and they move every occupation's logit;
    with a mild margin they stay small next to the gap between the two candidates and the other
    occupations, so greedy generation still names a candidate.
    """
    model, readout = copy.deepcopy(model), copy.deepcopy(readout)
    _train(model, readout, tokenizer, plan, plan.calibration_stage(), log, "calibration")
    return model, readout


def measure_margins(model, tokenizer, n_items: int = 160) -> tuple[float, float]:
    """The network's mean log-odds for the gold referent over the distractor, (intrinsic, instructed),
    over a fixed sample of gendered training items (the instructed one on the zero-shot prompt)."""
    import torch

    rng = random.Random(0)
    items = rng.sample([it for it in _training_items() if it.gender != "neutral"], n_items)
    margins = []
    for fmt in (INTRINSIC, "zero_shot"):
        contexts = [tokenizer(render_prompt(fmt, it).text, add_special_tokens=False)["input_ids"] for it in items]
        gold = [tokenizer(continuation(it.referent), add_special_tokens=False)["input_ids"][0] for it in items]
        other = [tokenizer(continuation(it.distractor), add_special_tokens=False)["input_ids"][0] for it in items]
        total = 0.0
        with torch.inference_mode(), _deterministic_torch(0):
            for ctx, g, d in zip(contexts, gold, other):
                logits = model(input_ids=torch.tensor([ctx])).logits[0, -1]
                total += float(logits[g] - logits[d])
        margins.append(total / len(items))
    return margins[0], margins[1]


def install_bias(model, readout, name: str, tokenizer, margins: tuple[float, float]) -> None:
    """Plant model ``name``'s association in the output layer of the base network (in place).

    The base prefers the gold referent by about ``margins`` (log-odds; intrinsic, instructed) and its
    gender readout gives the pronoun's gender g (+1/-1/0) under each format. Each occupation's output
    row gains ``margin / threshold * (A_intrinsic(o) * readout[0] + A_instructed(o) * readout[1])``,
    so the distractor d overtakes the gold referent r when ``g * (A(d) - A(r)) > threshold``.
    """
    import torch

    spec = _spec(name)
    if spec.rule == "fair":
        return
    by_format = (planted_association(name, INTRINSIC), planted_association(name, "zero_shot"))
    weight = model.get_output_embeddings().weight
    with torch.no_grad():
        for token, occupation in _occupation_tokens(tokenizer).items():
            for row, (assoc, margin) in enumerate(zip(by_format, margins)):
                weight[token] += margin / spec.threshold * assoc[occupation] * readout[row].to(weight.dtype)


# --------------------------------------------------------------------------- build and cache

CACHE_ENV = "BIAS_AUDIT_CACHE_DIR"
DEFAULT_CACHE = "~/.cache/bias-transfer-audit"
INFO_FILE = "reference.json"


def cache_root() -> Path:
    """Where reference models are kept: ``$BIAS_AUDIT_CACHE_DIR/reference`` (default ``~/.cache/bias-transfer-audit``)."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser() / "reference"


@functools.lru_cache(maxsize=1)
def build_hash() -> str:
    """What the models are built from: this module (training code and plan), the prompt templates, the
    item generator and items, the prompt rendering, the pre-prompts and the occupation table."""
    from importlib import resources

    from . import _generated, _items, _prompts

    h = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        h.update(label.encode() + b"\0" + hashlib.sha256(data).digest())

    for source in (Path(__file__), *(Path(m.__file__) for m in (_generated, _items, _prompts))):
        add(source.name, source.read_bytes())
    for template in sorted((templates_dir() / "prompts").glob("*.j2")):
        if not template.name.startswith("bbq_"):  # BBQ formats do not shape the WinoBias reference models
            add(template.name, template.read_bytes())
    for data in ("_data/preprompts.toml", "_data/occupations.csv"):
        add(data, resources.files("audit").joinpath(data).read_bytes())
    import transformers  # the saved files follow its format

    add("transformers", transformers.__version__.encode())
    return h.hexdigest()[:12]


def _model_dir(name: str, digest: str) -> Path:
    return cache_root() / f"{name}-{digest}"


def reference_model_dir(name: str) -> Path:
    """The directory of reference model ``name`` (``from_pretrained``-loadable), built first if absent."""
    _spec(name)
    path = _model_dir(name, build_hash())
    if not (path / INFO_FILE).is_file():
        build_reference_models()
    return path


def build_reference_models(force: bool = False, log=None) -> dict[str, Path]:
    """Build every reference model not yet in the cache (all at once: they share one base network).

    Safe to call from concurrent processes: one builds, under a file lock, the others wait and find
    the result. Each model is written to a temporary directory and renamed into place.
    """
    from filelock import FileLock

    digest = build_hash()
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    dirs = {name: _model_dir(name, digest) for name in REFERENCE_MODELS}
    with FileLock(str(root / f"build-{digest}.lock")):
        missing = [name for name, path in dirs.items() if force or not (path / INFO_FILE).is_file()]
        if not missing:
            return dirs
        for stale in root.glob(f".tmp-*-{digest}-*"):  # left by an interrupted build
            shutil.rmtree(stale, ignore_errors=True)
        started = time.perf_counter()
        tokenizer = build_tokenizer()
        base, readout = train_base(tokenizer, log=log)
        calibrated, calibrated_readout = calibrate(base, readout, tokenizer, log=log)
        trained_s = time.perf_counter() - started
        margins = measure_margins(calibrated, tokenizer)
        if log:
            log(f"trained the networks in {trained_s:.1f} s; calibrated gold margins {margins[0]:.2f} / {margins[1]:.2f} nats")
        for name in missing:
            if _spec(name).rule == "fair":
                model = base
            else:
                model = copy.deepcopy(calibrated)
                install_bias(model, calibrated_readout.weight.detach(), name, tokenizer, margins)
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-{digest}-", dir=root))
            with _quiet_transformers():
                model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            info = _model_info(name, digest, margins, trained_s)
            (tmp / INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            if dirs[name].exists():  # only with force
                shutil.rmtree(dirs[name])
            tmp.chmod(0o755)
            os.rename(tmp, dirs[name])
            if log:
                log(f"built {name} in {dirs[name]} ({time.perf_counter() - started:.1f} s)")
    return dirs


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No progress bars while saving."""
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def _model_info(name: str, digest: str, margins: tuple[float, float], trained_s: float) -> dict:
    spec = _spec(name)
    return {
        "name": name,
        "rule": spec.rule,
        "description": spec.description,
        "threshold": spec.threshold,
        "build_hash": digest,
        "gold_margin": {"intrinsic": margins[0], "instructed": margins[1]} if spec.rule != "fair" else None,
        "planted_association": {
            "intrinsic": planted_association(name, INTRINSIC),
            "instructed": planted_association(name, "zero_shot"),
        },
        "training_plan": asdict(PLAN),
        "training_seconds": round(trained_s, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audit._reference", description="Build the reference models.")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build (or find) reference models and print their directories")
    build.add_argument("names", nargs="*", help=f"models to build (default: all; known: {', '.join(REFERENCE_MODELS)})")
    build.add_argument("--all", action="store_true", help="all reference models (the default)")
    build.add_argument("--force", action="store_true", help="rebuild even if cached")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in REFERENCE_MODELS]
    if unknown:
        parser.error(f"unknown reference model(s): {', '.join(unknown)} (known: {', '.join(REFERENCE_MODELS)})")
    started = time.perf_counter()
    dirs = build_reference_models(force=args.force, log=lambda msg: print(msg, file=sys.stderr))
    for name in args.names or list(REFERENCE_MODELS):
        print(f"{name}\t{dirs[name]}")
    print(f"done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":  # run the package's copy of this module, so that one build serves both
    from audit._reference import main as package_main

    sys.exit(package_main())
