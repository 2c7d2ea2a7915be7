"""The generated benchmark: balance per occupation x gender x type x stance, reproducibility, well-formed items."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from audit.datasets.winobias.generated import generate_items
from audit.datasets.winobias.occupations import occupations
from audit.datasets.winobias.official import format_official_line, parse_line

OCCS = occupations()
STEREOTYPE = {o.name: o.stereotype for o in OCCS}


@pytest.mark.parametrize("partners", [1, 2, 3])
def test_balance_occupation_gender_type_stance(partners):
    items = generate_items(seed=0, partners=partners)
    assert len(items) == 40 * 2 * 2 * partners * 2
    counts = Counter((i.referent, i.gender, i.type, i.stance) for i in items)
    for occ in OCCS:
        other = "female" if occ.stereotype == "male" else "male"
        for type_ in (1, 2):
            # Gender matching the stereotype is pro, the other gender anti; 2 splits x partners each.
            assert counts[(occ.name, occ.stereotype, type_, "pro")] == 2 * partners
            assert counts[(occ.name, other, type_, "anti")] == 2 * partners
            assert counts[(occ.name, occ.stereotype, type_, "anti")] == 0
            assert counts[(occ.name, other, type_, "pro")] == 0
    per_split = Counter((i.referent, i.gender, i.type, i.split) for i in items)
    assert set(per_split.values()) == {partners} and len(per_split) == 40 * 2 * 2 * 2


def test_hand_checked_cells():
    counts = Counter((i.referent, i.gender, i.type, i.stance) for i in generate_items(seed=0))
    assert counts[("nurse", "female", 1, "pro")] == 8
    assert counts[("nurse", "male", 2, "anti")] == 8
    assert counts[("CEO", "male", 2, "pro")] == 8
    assert counts[("CEO", "female", 1, "anti")] == 8
    assert counts[("CEO", "female", 1, "pro")] == 0


def test_neutral_items_balanced():
    items = generate_items(seed=0, neutral=True)
    neutral = [i for i in items if i.gender == "neutral"]
    assert len(neutral) == 640 and {i.stance for i in neutral} == {"neutral"}
    assert {i.pronoun for i in neutral} <= {"they", "them", "their"}
    assert set(Counter((i.referent, i.type, i.split) for i in neutral).values()) == {4}
    # Adding neutral items leaves the gendered ones unchanged (same draw).
    gendered = [i for i in items if i.gender != "neutral"]
    assert [(i.sentence, i.referent) for i in gendered] == [(i.sentence, i.referent) for i in generate_items(seed=0)]


def test_seeded_and_reproducible():
    assert generate_items(seed=7) == generate_items(seed=7)
    assert generate_items(seed=7) != generate_items(seed=8)


def test_items_well_formed_with_gender_swapped_twins():
    items = generate_items(seed=0)
    assert len({i.id for i in items}) == len(items)
    for i in items:
        a, b = i.candidates
        assert i.referent in i.candidates and a != b
        assert STEREOTYPE[a] != STEREOTYPE[b]  # one male- and one female-stereotyped person, as in WinoBias
        assert 0 <= i.sentence.index(a) < i.sentence.index(b, i.sentence.index(a) + len(a))
        assert re.search(rf"\b{i.pronoun}\b", i.sentence)
    twins = Counter((i.candidates, i.referent, i.type, i.split, i.sentence.split(" ")[:4].__str__()) for i in items)
    assert set(twins.values()) == {2}


def test_generated_items_survive_the_official_format():
    for k, item in enumerate(generate_items(seed=0), start=1):
        parsed = parse_line(format_official_line(item, k), type_=item.type, stance=item.stance, split=item.split, source="gen")
        assert (parsed.sentence, parsed.pronoun, parsed.gender, parsed.candidates, parsed.referent) == (
            item.sentence, item.pronoun, item.gender, item.candidates, item.referent,
        )
