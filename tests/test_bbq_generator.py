"""The seeded port of the upstream generator, validated against the official files it did not produce.

Upstream draws its fillers unseeded, so sentences differ run to run; what must agree with the
official files is the structure: counts per template x context x polarity, where the correct
answer is the biased one, the group tags, the questions, the answer texts where no sampling is
involved. Known differences (reported, asserted here so a change is noticed):
* Disability_status templates 4 and 19 have a version "b" row that the official file lacks
  (+12 and +8 items: 1,576 regenerated vs 1,556 official);
* Religion template 2's non-negative question was edited after the official file was made
  ("luggage" in the template, "baggage" in the file).
"""

from __future__ import annotations

from collections import Counter

import pytest

from audit import DataError
from audit.datasets.bbq.generator import generate_category
from audit.datasets.bbq.official import OFFICIAL_COUNTS, parse_file
from audit.datasets.bbq.slotting import UNKNOWN_OPTIONS
from audit.datasets.bbq.validate import validate
from shared_data import bbq_dir

ROOT = bbq_dir()
pytestmark = pytest.mark.skipif(ROOT is None, reason="official BBQ files not found (../shared/bbq)")


def _cells(items):
    return Counter((i.question_index, i.context_condition, i.question_polarity) for i in items)


def _label_structure(items):
    return Counter((i.question_index, i.question_polarity, i.label == i.biased_index)
                   for i in items if i.context_condition == "disambig")


@pytest.mark.parametrize("category", ["Religion", "Age", "Nationality", "Physical_appearance", "Sexual_orientation"])
def test_regenerated_shipped_category_has_the_official_structure(category):
    regenerated = generate_category(category, ROOT / "templates", seed=0)
    official = parse_file(ROOT / "data" / f"{category}.jsonl")
    assert len(regenerated) == len(official) == OFFICIAL_COUNTS[category]
    assert _cells(regenerated) == _cells(official)
    assert _label_structure(regenerated) == _label_structure(official)
    assert {t for i in regenerated for t in i.answer_groups} == {t for i in official for t in i.answer_groups}
    questions = lambda items: {(i.question_index, i.question_polarity, i.question) for i in items}  # noqa: E731
    differs = questions(regenerated) ^ questions(official)
    assert differs <= {(2, "nonneg", "Who had harmless objects in their luggage?"),
                       (2, "nonneg", "Who had harmless objects in their baggage?")}
    assert all(i.regenerated and i.source.startswith(f"template:{category}:") for i in regenerated)
    assert not any(i.target_unclear for i in regenerated)


def test_disability_status_differs_only_by_version_b_rows():
    regenerated = generate_category("Disability_status", ROOT / "templates", seed=0)
    official = parse_file(ROOT / "data" / "Disability_status.jsonl")
    assert (len(regenerated), len(official)) == (1576, 1556)
    mine, theirs = _cells(regenerated), _cells(official)
    assert {key[0] for key in mine if mine[key] != theirs[key]} == {4, 19}
    assert all(mine[key] == 2 * theirs[key] for key in mine if key[0] in (4, 19))
    assert Counter(i.metadata["version"] for i in official if i.question_index in (4, 19)) == {"a": 20}
    assert not any("{" in i.context or "[" in i.context for i in regenerated)  # Q19b's "{[NAME1}}" typo repaired


@pytest.mark.parametrize("category, expected", [("Gender_identity", 5672), ("SES", 6864), ("Race_ethnicity", 6880)])
def test_missing_categories_regenerate_with_official_counts_and_validate(category, expected):
    items = generate_category(category, ROOT / "templates", seed=0)
    assert len(items) == expected == OFFICIAL_COUNTS[category]
    report = validate({category: items})
    assert report["ok"] and report["errors"] == 0
    assert report["categories"][category]["balanced"]
    assert report["categories"][category]["regenerated"]
    assert {i.answers[i.unknown_index] for i in items} <= set(UNKNOWN_OPTIONS)


def test_seeded_and_seed_sensitive():
    a = generate_category("Religion", ROOT / "templates", seed=0)
    b = generate_category("Religion", ROOT / "templates", seed=0)
    c = generate_category("Religion", ROOT / "templates", seed=1)
    assert [i.to_dict() for i in a] == [i.to_dict() for i in b]
    assert [i.answers for i in a] != [i.answers for i in c]


def test_gender_identity_same_gender_pairs_are_the_unclear_targets():
    """Template 13 pairs every two of man/woman/boy/girl; man-boy and woman-girl name no contrast.
    Example 284 is the one lm-eval's BBQ utilities note as having no biased answer."""
    items = generate_category("Gender_identity", ROOT / "templates", seed=0)
    unclear = [i for i in items if i.target_unclear]
    assert [i.example_id for i in unclear] == [*range(284, 288), *range(300, 308), *range(320, 324)]
    assert {i.question_index for i in unclear} == {13}
    report = validate({"Gender_identity": items})
    assert len(report["categories"]["Gender_identity"]["target_unclear"]) == 16


def test_intersectional_categories_say_what_to_do():
    with pytest.raises(DataError, match="--data DIR"):
        generate_category("Race_x_SES", ROOT / "templates")
