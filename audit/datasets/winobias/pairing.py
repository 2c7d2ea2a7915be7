"""Gender twins: the pairs of items that differ only in the pronoun's gender.

WinoBias (Zhao et al., NAACL 2018) publishes each sentence twice: line *i* of
``pro_stereotyped_typeT.txt.S`` and line *i* of ``anti_stereotyped_typeT.txt.S`` are the same sentence
with the pronoun's gender swapped. Twins are therefore paired by their **source** -- split, type and
line index (``Item.id`` ``wb-S-STANCE-tT-IIII``) -- not by their text, so a sentence with a second
gendered word ("his", "himself", "a generous man") still finds its twin. Items of any other source
(the generated benchmark, a user's items) are paired by their structure: split, type, candidates,
referent and the sentence with every gendered word masked.

Every pair is checked: the two genders must be male and female, candidates and referent identical.
A group that fails the check is *unpaired* with its reason (the official test split has two such
lines, type 2 index 382 and 384, whose pro and anti lines are different sentences with the same
gender). A pair is *minimal* when its two sentences are identical word for word except for
gendered words swapped for their counterpart; the official files have a few that are not
("because he is a generous man" / "because she is generous"). ``non_minimal_report`` lists them by
file:line for ``data validate``; ``Pairing.usable(include_non_minimal)`` is the setting deciding
whether the paired statistics use them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from audit.datasets.winobias.items import Item

# Gendered words and the words their counterpart may be ("her" is both "him" and "his").
_MALE = {"he", "him", "his", "himself", "man", "men", "boy", "boys", "gentleman", "gentlemen", "mr",
         "husband", "father", "son", "brother", "male"}
_FEMALE = {"she", "her", "hers", "herself", "woman", "women", "girl", "girls", "lady", "ladies", "mrs", "ms",
           "wife", "mother", "daughter", "sister", "female"}
_SWAPS = {
    ("he", "she"), ("him", "her"), ("his", "her"), ("his", "hers"), ("himself", "herself"), ("man", "woman"),
    ("men", "women"), ("boy", "girl"), ("boys", "girls"), ("gentleman", "lady"), ("gentlemen", "ladies"),
    ("mr", "mrs"), ("mr", "ms"), ("husband", "wife"), ("father", "mother"), ("son", "daughter"),
    ("brother", "sister"), ("male", "female"),
}
_WB_ID = re.compile(r"^wb-(dev|test)-(pro|anti)-t([12])-(\d+)$")
_WORD = re.compile(r"\w+|[^\w\s]")


@dataclass(frozen=True)
class TwinPair:
    """Indices (into the item list) of a male and a female twin; ``difference`` is empty for a minimal pair."""

    male: int
    female: int
    key: str
    difference: str = ""

    @property
    def minimal(self) -> bool:
        return not self.difference


@dataclass
class Pairing:
    """All twin pairs of an item list, the items left unpaired (index, reason) and the neutral items."""

    pairs: list[TwinPair] = field(default_factory=list)
    unpaired: list[tuple[int, str]] = field(default_factory=list)
    neutral: list[int] = field(default_factory=list)

    def usable(self, include_non_minimal: bool = True) -> list[TwinPair]:
        """The pairs the paired statistics use: all, or only the minimal ones."""
        return [p for p in self.pairs if include_non_minimal or p.minimal]

    @property
    def non_minimal(self) -> list[TwinPair]:
        return [p for p in self.pairs if not p.minimal]


def words(sentence: str) -> list[str]:
    return _WORD.findall(sentence.lower())


def minimal_difference(male_sentence: str, female_sentence: str) -> str:
    """"" when the sentences differ only by gendered words swapped for their counterparts, else a
    short description of the first difference (``'... is a generous man' vs '... is generous'``)."""
    a, b = words(male_sentence), words(female_sentence)
    if len(a) == len(b) and all(x == y or (x, y) in _SWAPS for x, y in zip(a, b)):
        return ""
    start = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y and (x, y) not in _SWAPS), min(len(a), len(b)))
    end_a, end_b = len(a), len(b)
    while end_a > start and end_b > start and (a[end_a - 1] == b[end_b - 1] or (a[end_a - 1], b[end_b - 1]) in _SWAPS):
        end_a, end_b = end_a - 1, end_b - 1
    lo = max(0, start - 2)
    return f"{' '.join(a[lo:end_a]) or '(nothing)'!r} vs {' '.join(b[lo:end_b]) or '(nothing)'!r}"


def _masked(sentence: str) -> str:
    return " ".join("<g>" if w in _MALE or w in _FEMALE else w for w in words(sentence))


def twin_group_key(item: Item) -> str:
    """Items that should be twins share this key: the source line for WinoBias items (split, type, index),
    else split, type, candidates, referent and the gender-masked sentence."""
    m = _WB_ID.match(item.id)
    if m:
        split, _, type_, index = m.groups()
        return f"wb/{split}/t{type_}/{int(index)}"
    return f"{item.split}/t{item.type}/{'|'.join(item.candidates)}/{item.referent}/{_masked(item.sentence)}"


def pair_twins(items: Sequence[Item]) -> Pairing:
    """Pair every male item with its female twin (see the module docstring for the rules)."""
    groups: dict[str, list[int]] = {}
    seen: dict[str, int] = {}  # a condition run over several seeds lists each item once per seed
    result = Pairing()
    for i, item in enumerate(items):
        if item.gender == "neutral":
            result.neutral.append(i)
            continue
        copy = seen[item.id] = seen.get(item.id, -1) + 1
        groups.setdefault(twin_group_key(item) + (f"#{copy}" if copy else ""), []).append(i)
    for key, members in groups.items():
        males = [i for i in members if items[i].gender == "male"]
        females = [i for i in members if items[i].gender == "female"]
        if len(males) != 1 or len(females) != 1:
            genders = "/".join(items[i].gender for i in members)
            why = f"no gender twin: {len(members)} item(s) share its source ({genders})"
            result.unpaired += [(i, why) for i in members]
            continue
        m, f = items[males[0]], items[females[0]]
        if m.candidates != f.candidates or m.referent != f.referent:
            why = (f"its twin is a different item: candidates {m.candidates}/{f.candidates}, "
                   f"referent {m.referent!r}/{f.referent!r}")
            result.unpaired += [(males[0], why), (females[0], why)]
            continue
        result.pairs.append(TwinPair(males[0], females[0], key, minimal_difference(m.sentence, f.sentence)))
    result.unpaired.sort()
    return result


def non_minimal_report(items: Sequence[Item], pairing: Pairing | None = None) -> list[str]:
    """One line per twin pair that is not minimal, and per item without a twin, naming its source
    (``file:line``), for ``data validate``."""
    pairing = pairing or pair_twins(items)
    lines = [
        f"{items[p.male].source or items[p.male].id} / {items[p.female].source or items[p.female].id}: "
        f"twins differ beyond the gendered words: {p.difference}"
        for p in pairing.non_minimal
    ]
    lines += [f"{items[i].source or items[i].id}: {why}" for i, why in pairing.unpaired]
    return lines
