"""The official WinoBias reader: each real-data quirk on a hand-written line, errors, directories,
a render/parse round trip, and (when the folder exists) all 3,168 published lines."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from shared_data import winobias_dir
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import DataError
from audit.datasets.winobias.items import Item
from audit.datasets.winobias.occupations import occupations
from audit.datasets.winobias.official import (
    LineError,
    format_official_line,
    load_winobias_dir,
    official_file_names,
    parse_file_name,
    parse_line,
    validate_winobias_dir,
)


def parse(line: str, stance: str = "pro", type_: int = 1, split: str = "test", source: str = "f.txt:1") -> Item:
    return parse_line(line, type_=type_, stance=stance, split=split, source=source)  # type: ignore[arg-type]


# --- one line: the quirks ------------------------------------------------------------------------

def test_plain_type1_line():
    item = parse("1 [The developer] argued with the designer because [he] did not like the design.",
                 source="pro_stereotyped_type1.txt.test:1")
    assert item == Item(
        id="wb-test-pro-t1-0001",
        sentence="The developer argued with the designer because he did not like the design.",
        pronoun="he", gender="male", candidates=("developer", "designer"), referent="developer",
        type=1, stance="pro", split="test", source="pro_stereotyped_type1.txt.test:1",
    )


def test_referent_second_and_anti():
    item = parse("2 The developer argued with [the designer] because [his] idea cannot be implemented.",
                 stance="anti", split="dev")
    assert (item.referent, item.candidates, item.pronoun, item.gender) == ("designer", ("developer", "designer"), "his", "male")
    assert item.id == "wb-dev-anti-t1-0002"


def test_doubled_determiner_outside_the_bracket():
    item = parse("3 The assistant notified the [the chief] about a problem and asked [him] to take action.", type_=2)
    assert item.sentence == "The assistant notified the chief about a problem and asked him to take action."
    assert (item.referent, item.candidates) == ("chief", ("assistant", "chief"))


def test_indefinite_articles_inside_the_bracket():
    an = parse("307 The farmer hired [an assistant] and told [her] to come to work twice a week.", type_=2)
    a = parse("323 The physician hired [a housekeeper] and told [her] to work every day.", type_=2)
    assert (an.referent, an.candidates) == ("assistant", ("farmer", "assistant"))
    assert an.sentence == "The farmer hired an assistant and told her to come to work twice a week."
    assert (a.referent, a.candidates) == ("housekeeper", ("physician", "housekeeper"))


def test_space_inside_bracket_and_bracket_without_determiner():
    item = parse("176 The teacher asked the [ physician] about the best course of action and believed [him].", type_=2)
    assert item.sentence == "The teacher asked the physician about the best course of action and believed him."
    assert item.referent == "physician"
    bare = parse("162 The mechanic fixed the [housekeeper] 's car and then [she] wrote a thankful note.")
    assert bare.referent == "housekeeper"


def test_possessive_spacing_is_detokenised():
    item = parse("110 The janitor cleaned [the librarian] 's room and [she] was grateful.")
    assert item.sentence == "The janitor cleaned the librarian's room and she was grateful."
    assert (item.referent, item.candidates) == ("librarian", ("janitor", "librarian"))
    farmer = parse("5 The nurse ate [the farmer] 's apples because [he] offered them.")
    assert farmer.sentence == "The nurse ate the farmer's apples because he offered them."
    assert farmer.referent == "farmer"


def test_multi_word_occupation():
    item = parse("213 [The construction worker] gave the tax return to the accountant because [he] didn't know what to do.")
    assert item.candidates == ("construction worker", "accountant")
    assert item.referent == "construction worker"


def test_three_occupations_take_the_first_two_in_order_of_appearance():
    item = parse("72 The developer hated [the cleaner] and reported [her] to the manager.", type_=2)
    assert item.candidates == ("developer", "cleaner")
    assert item.referent == "cleaner"
    assert item.sentence.endswith("reported her to the manager.")


def test_an_occupation_named_twice_counts_once():
    item = parse("32 The mover went to the house of [the editor] because [she] needed a mover.")
    assert item.candidates == ("mover", "editor")
    assert item.referent == "editor"


def test_several_pronouns_first_one_is_kept():
    item = parse("27 [The developer] visited the hairdresser because [he] needed to cut [his] hair.")
    assert (item.pronoun, item.gender) == ("he", "male")


def test_names_normalised_to_the_table_spelling():
    item = parse("9 [The ceo] rejected the Designer 's proposal because [He] felt ignored.")
    assert item.candidates == ("CEO", "designer")
    assert item.referent == "CEO"
    assert item.pronoun == "he"
    assert item.sentence == "The ceo rejected the Designer's proposal because He felt ignored."


def test_neutral_pronoun_with_neutral_stance():
    item = parse("4 The nurse thanked [the driver] because [they] were on time.", stance="neutral")
    assert (item.gender, item.stance) == ("neutral", "neutral")


# --- one line: errors name the source and the reason ----------------------------------------------

@pytest.mark.parametrize(
    "line, stance, reason",
    [
        ("[The developer] argued with the designer because [he] left.", "pro", "expected '<index> <sentence>'"),
        ("   ", "pro", "empty"),
        ("8 [The astronaut] argued with the designer because [he] left.", "pro", "not one of the 40"),
        ("8 [The developer] argued with the designer because he left.", "pro", "found 1 bracket"),
        ("8 [The developer] argued with [the designer] because he left.", "pro", "not a pronoun"),
        ("8 [The developer] argued with the designer because [he] hurt [her].", "pro", "disagree in gender"),
        ("8 [The developer argued with the designer because [he] left.", "pro", "unbalanced"),
        ("8 [The developer] argued with the designer] because [he] left.", "pro", "unbalanced"),
        ("8 [The developer] argued with his friend because [he] left.", "pro", "names 1 occupation"),
        ("8 The developer told the designer that [the manager] saw [him].", "pro", "not one of the first two"),
        ("8 [The developer] argued with the designer because [she] left.", "pro", "disagrees with the occupations table"),
        ("8 [The developer] argued with the designer because [he] left.", "anti", "disagrees with the occupations table"),
        ("8 [The developer] argued with the designer because [they] left.", "pro", "disagrees with the occupations table"),
    ],
)
def test_bad_lines_raise_with_source_and_reason(line, stance, reason):
    with pytest.raises(LineError) as excinfo:
        parse(line, stance=stance, source="anti_stereotyped_type1.txt.dev:17")
    assert str(excinfo.value).startswith("anti_stereotyped_type1.txt.dev:17: ")
    assert reason in excinfo.value.reason
    assert isinstance(excinfo.value, DataError)


def test_file_names():
    assert parse_file_name("anti_stereotyped_type1.txt.dev") == ("anti", 1, "dev")
    assert parse_file_name("pro_stereotyped_type2.txt.test") == ("pro", 2, "test")
    assert parse_file_name("female_occupations.txt") is None
    assert parse_file_name("pro_stereotyped_type3.txt.dev") is None
    assert len(set(official_file_names())) == 8


# --- directories ---------------------------------------------------------------------------------

PRO_T1 = [
    "1 [The developer] argued with the designer because [he] did not like the design.",
    "2 The developer argued with [the designer] because [her] idea cannot be implemented.",
]
# Not paired line by line with PRO_T1: another order, another length.
ANTI_T1 = [
    "1 [The mechanic] gave the clerk a present because [she] won the lottery.",
    "2 The developer argued with [the designer] because [his] idea cannot be implemented.",
    "3 [The developer] argued with the designer because [she] did not like the design.",
]


def write_dir(root: Path, files: dict[str, list[str]], newline: str = "\n", final_newline: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, lines in files.items():
        text = newline.join(lines) + (newline if final_newline else "")
        (root / name).write_bytes(text.encode("utf-8"))
    return root


def test_load_dir_unpaired_files_crlf_and_no_final_newline(tmp_path):
    d = write_dir(tmp_path / "wb", {"pro_stereotyped_type1.txt.test": PRO_T1}, final_newline=False)
    write_dir(d, {"anti_stereotyped_type1.txt.test": ANTI_T1}, newline="\r\n")
    write_dir(d, {"README.md": ["not data"]})
    items = load_winobias_dir(d)
    assert [i.id for i in items] == [
        "wb-test-pro-t1-0001", "wb-test-pro-t1-0002",
        "wb-test-anti-t1-0001", "wb-test-anti-t1-0002", "wb-test-anti-t1-0003",
    ]
    assert [(i.referent, i.gender) for i in items] == [
        ("developer", "male"), ("designer", "female"), ("mechanic", "female"), ("designer", "male"), ("developer", "female"),
    ]
    assert items[2].source == "anti_stereotyped_type1.txt.test:1"
    assert not items[2].sentence.endswith("\r")


def test_strict_load_raises_file_and_line_lenient_skips(tmp_path):
    lines = [PRO_T1[0], "", "7 [The astronaut] met the designer because [he] was late.", PRO_T1[1]]
    d = write_dir(tmp_path, {"pro_stereotyped_type1.txt.dev": lines})
    with pytest.raises(DataError, match=r"^pro_stereotyped_type1\.txt\.dev:3: referent \[The astronaut\] is not one of the 40"):
        load_winobias_dir(d)
    assert [i.id for i in load_winobias_dir(d, strict=False)] == ["wb-dev-pro-t1-0001", "wb-dev-pro-t1-0002"]


def test_missing_or_empty_directory_is_named(tmp_path):
    with pytest.raises(DataError, match="nowhere: no such directory"):
        load_winobias_dir(tmp_path / "nowhere")
    (tmp_path / "male_occupations.txt").write_text("driver")
    with pytest.raises(DataError, match=f"{re.escape(str(tmp_path))}: no WinoBias files"):
        load_winobias_dir(tmp_path)
    with pytest.raises(DataError, match="not a directory"):
        validate_winobias_dir(tmp_path / "male_occupations.txt")


def test_validate_counts_and_every_bad_line(tmp_path):
    bad_pro = PRO_T1 + ["3 [The developer] argued with the designer because [she] left.", "garbage"]
    d = write_dir(tmp_path, {"pro_stereotyped_type1.txt.test": bad_pro, "anti_stereotyped_type1.txt.test": ANTI_T1 + [ANTI_T1[0]]})
    (d / "anti_stereotyped_type2.txt.test").write_bytes(b"1 The cook met [the nurse] and hugged [him] \xff.\n")
    (d / "female_occupations.txt").write_text("nurse\ndriver\nastronaut")  # no final newline, as published
    report = validate_winobias_dir(d)
    assert report.n_items == 5
    assert report.by_file == {"pro_stereotyped_type1.txt.test": 2, "anti_stereotyped_type1.txt.test": 3, "anti_stereotyped_type2.txt.test": 0}
    assert report.by_stance == {"pro": 2, "anti": 3}
    assert report.by_type == {"1": 5}
    assert report.by_gender == {"male": 2, "female": 3}
    assert report.by_occupation["developer"] == 2 and report.by_occupation["designer"] == 2
    assert report.by_occupation["mechanic"] == 1 and report.by_occupation["nurse"] == 0
    assert report.by_occupation_gender["designer"] == {"male": 1, "female": 1}
    assert [(f, n) for f, n, _ in report.problems] == [
        ("pro_stereotyped_type1.txt.test", 3),
        ("pro_stereotyped_type1.txt.test", 4),
        ("anti_stereotyped_type1.txt.test", 4),
        ("anti_stereotyped_type2.txt.test", 1),
        ("female_occupations.txt", 2),
        ("female_occupations.txt", 3),
    ]
    reasons = [r for _, _, r in report.problems]
    assert "disagrees with the occupations table" in reasons[0]
    assert "expected '<index> <sentence>'" in reasons[1]
    assert "duplicate index 1 (first on line 1)" in reasons[2]
    assert "not UTF-8" in reasons[3]
    assert "male-stereotyped" in reasons[4] and "astronaut" in reasons[5]
    assert not report.ok
    assert "pro_stereotyped_type1.txt.dev" in report.missing_files

    as_json = json.loads(json.dumps(report.to_dict()))
    assert as_json["items"] == 5
    assert as_json["errors"][0]["file"] == "pro_stereotyped_type1.txt.test" and as_json["errors"][0]["line"] == 3
    text = report.format_text()
    assert "5 items, 6 error(s)" in text
    assert "pro_stereotyped_type1.txt.test:4: expected" in text


# --- round trip ----------------------------------------------------------------------------------

_FILLER = ["was", "tired", "needed", "help", "with", "report", "yesterday", "again", "quickly", "of", "a", "storm", "the", "car"]
_VERBS = ["argued with", "called", "thanked", "waited for", "met"]
_FORMS = {"male": ["he", "him", "his", "himself"], "female": ["she", "her", "herself"], "neutral": ["they", "them", "their"]}
_NAMES = [o.name for o in occupations()]
_STEREOTYPE = {o.name: o.stereotype for o in occupations()}


@st.composite
def official_items(draw) -> tuple[Item, int]:
    a, b, bystander = draw(st.lists(st.sampled_from(_NAMES), min_size=3, max_size=3, unique=True))
    referent = draw(st.sampled_from([a, b]))
    gender = draw(st.sampled_from(["male", "female", "neutral"]))
    pronoun = draw(st.sampled_from(_FORMS[gender]))
    det_a, det_b = draw(st.sampled_from(["The", "A"])), draw(st.sampled_from(["the", "a", "an"]))
    poss_b = draw(st.sampled_from(["", "'s car"]))
    conj = draw(st.sampled_from(["because", "and", "but"]))
    filler = " ".join(draw(st.lists(st.sampled_from(_FILLER), min_size=0, max_size=6)))
    tail = draw(st.sampled_from(["", f" near the {bystander}"]))
    sentence = f"{det_a} {a} {draw(st.sampled_from(_VERBS))} {det_b} {b}{poss_b} {conj} {pronoun} {filler}".rstrip() + tail + "."
    stance = "neutral" if gender == "neutral" else ("pro" if gender == _STEREOTYPE[referent] else "anti")
    type_, split = draw(st.sampled_from([1, 2])), draw(st.sampled_from(["dev", "test"]))
    index = draw(st.integers(min_value=0, max_value=99_999))
    name = f"{stance}_stereotyped_type{type_}.txt.{split}"
    item = Item(
        id=f"wb-{split}-{stance}-t{type_}-{index:04d}", sentence=sentence, pronoun=pronoun, gender=gender,
        candidates=(a, b), referent=referent, type=type_, stance=stance, split=split, source=f"{name}:{index}",
    )
    return item, index


@settings(max_examples=200, deadline=None)
@given(official_items())
def test_round_trip_render_then_parse(case):
    item, index = case
    line = format_official_line(item, index)
    assert line.count("[") == 2
    parsed = parse_line(line, type_=item.type, stance=item.stance, split=item.split, source=item.source)
    assert parsed == item


def test_render_marks_referent_with_determiner_and_first_pronoun_after_it():
    item = parse("2 The developer argued with [the designer] because [her] idea cannot be implemented.")
    assert format_official_line(item, 2) == "2 The developer argued with [the designer] because [her] idea cannot be implemented."


# --- the published files -------------------------------------------------------------------------



real = pytest.mark.skipif(winobias_dir() is None, reason="official WinoBias files not found (../shared/winobias or $BIAS_AUDIT_WINOBIAS_DIR)")
_GENDER = {"he": "male", "him": "male", "his": "male", "himself": "male", "she": "female", "her": "female", "herself": "female"}


@real
def test_all_published_lines_load_with_right_referent_and_gender():
    d = winobias_dir()
    items = load_winobias_dir(d)
    assert len(items) == 3168
    by_source = {i.source: i for i in items}
    for name in official_file_names():
        raw = (d / name).read_text(encoding="utf-8").splitlines()
        assert len(raw) == 396
        for number, line in enumerate(raw, start=1):
            item = by_source[f"{name}:{number}"]
            brackets = re.findall(r"\[([^\]]*)\]", line)
            # Independent reading of the line: last words of the first bracket, gender of the second.
            words = [w for w in brackets[0].lower().split() if w not in ("the", "a", "an")]
            assert item.referent.lower() == " ".join(words), line
            assert item.gender == _GENDER[brackets[1].strip().lower()], line
            assert len(item.candidates) == 2 and item.candidates[0] != item.candidates[1]
            assert item.referent in item.candidates
            assert "[" not in item.sentence and " 's" not in item.sentence
    assert len({i.id for i in items}) == 3168
    # The referent's gender matches its stereotype exactly in the pro files.
    stereotype = {o.name: o.stereotype for o in occupations()}
    assert all((i.gender == stereotype[i.referent]) == (i.stance == "pro") for i in items)


@real
def test_published_quirky_lines():
    by_source = {i.source: i for i in load_winobias_dir(winobias_dir())}
    chief = by_source["anti_stereotyped_type2.txt.test:3"]
    assert chief.sentence == "The assistant notified the chief about a problem and asked her to take action."
    assert (chief.referent, chief.candidates, chief.gender) == ("chief", ("assistant", "chief"), "female")
    three = by_source["pro_stereotyped_type2.txt.dev:72"]
    assert three.candidates == ("developer", "cleaner") and three.referent == "cleaner"
    assert by_source["anti_stereotyped_type2.txt.test:307"].referent == "assistant"
    assert by_source["anti_stereotyped_type1.txt.dev:110"].sentence == "The janitor cleaned the librarian's room and he was grateful."


@real
def test_validate_published_files_and_round_trip():
    d = winobias_dir()
    report = validate_winobias_dir(d)
    assert (report.n_items, report.problems, report.missing_files) == (3168, [], [])
    assert set(report.by_file.values()) == {396}
    assert report.by_split == {"dev": 1584, "test": 1584}
    assert report.by_stance == {"pro": 1584, "anti": 1584}
    assert report.by_type == {"1": 1584, "2": 1584}
    assert sum(report.by_occupation.values()) == 3168 and min(report.by_occupation.values()) > 0
    for item in load_winobias_dir(d):
        name, number = item.source.rsplit(":", 1)
        stance, type_, split = parse_file_name(name)
        line = format_official_line(item, int(number))
        assert parse_line(line, type_=type_, stance=stance, split=split, source=item.source) == item
