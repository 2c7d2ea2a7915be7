"""The planted rule of the reference models: which candidate each model picks, the tests' oracle."""

from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass
from typing import Literal, Sequence


from audit.datasets.winobias.items import Item
from audit.datasets.winobias.occupations import occupations

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


