"""The reference models' network and training: the base network (reference-fair), the mild-margin copy,
and the planted bias written into the output rows (see ``audit.datasets.winobias.reference_model``)."""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import random
from dataclasses import dataclass
from typing import Iterator, Sequence


from audit.datasets.winobias.occupations import occupations
from audit.prompts.render import continuation, render_prompt

from audit.datasets.winobias.reference_model.planted import GENDER_SIGN, INTRINSIC, _spec, planted_association
from audit.datasets.winobias.reference_model.corpus import Example, FAMILIES, _example, _training_items, pronoun_frames

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
    from audit.datasets.winobias.items import PRONOUN_GENDER

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

    from audit.datasets.winobias.items import PRONOUN_GENDER

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


