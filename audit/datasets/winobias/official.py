"""Reader for the official WinoBias sentence files (Zhao et al., NAACL 2018).

The files are ``{pro,anti}_stereotyped_type{1,2}.txt.{dev,test}``, one item per line::

    2 The developer argued with [the designer] because [her] idea cannot be implemented.

``<index> <sentence>``; the first ``[...]`` is the gold referent, later ``[...]`` are the pronouns
that refer to it. Stance, type and split come from the file name. Pro and anti files are *not*
assumed to pair line by line: each line is parsed on its own.

How the published files' quirks are handled (all 3,168 lines of the eight files load):

* ``the [the chief]`` (the determiner doubled outside the bracket): the outer one is dropped, so the
  sentence reads "the chief".
* ``[an assistant]``, ``[a housekeeper]``, ``[housekeeper] 's``, ``[ physician]``: determiners and
  spaces inside the bracket are not part of the occupation's name.
* ``farmer 's`` (tokenised possessive) and other tokeniser spacing (``did n't``, ``word .``): the
  sentence is detokenised to ``farmer's`` / ``didn't`` / ``word.``, the text a language model reads.
* Multi-word occupations (``construction worker``) are matched as one name, longest name first.
* A line naming three occupations (``The developer hated [the cleaner] and reported [him] to the
  manager.``): the **two candidates are the first two distinct occupations in order of appearance**
  (the two people of the WinoBias schema, always named before the pronoun); later occupations are
  bystanders. The gold referent must be one of the two, else the line is an error.
* Occupation names are normalised to the occupations table's data-file spelling (``CEO``,
  ``construction worker``); an occupation outside the 40 is an error naming file:line.

Stance check: the file name's stance must agree with the occupations table, i.e. *pro* exactly when
the pronoun's gender is the referent occupation's stereotype (``audit/datasets/winobias/occupations.csv``). On
disagreement the line is **rejected as an error** rather than relabelled: RPA by stance and O-SB are
computed from the table, so an item whose label contradicts it would silently mix the two groups.
(No published line disagrees.)
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Literal

from audit.errors import DataError
from audit.datasets.winobias.items import PRONOUN_GENDER, Item
from audit.datasets.winobias.occupations import Occupation, lookup_occupation, occupation_index, occupations

Stance = Literal["pro", "anti", "neutral"]
Split = Literal["dev", "test"]

FILE_NAME = re.compile(r"^(pro|anti)_stereotyped_type([12])\.txt\.(dev|test)$")
OCCUPATION_LISTS = {"male_occupations.txt": "male", "female_occupations.txt": "female"}

_STANCES = ("pro", "anti")
_TYPES = (1, 2)
_SPLITS = ("dev", "test")
_DETERMINER = r"(?:the|an|a)"


class LineError(DataError):
    """One line of a WinoBias file cannot be parsed; ``str()`` is ``"SOURCE: reason"``."""

    def __init__(self, source: str, reason: str):
        super().__init__(f"{source}: {reason}" if source else reason)
        self.source = source
        self.reason = reason


def official_file_names() -> list[str]:
    """The eight file names, in the order items are loaded (split, type, pro before anti)."""
    return [
        f"{stance}_stereotyped_type{type_}.txt.{split}"
        for split in _SPLITS
        for type_ in _TYPES
        for stance in _STANCES
    ]


def parse_file_name(name: str) -> tuple[Stance, int, Split] | None:
    """``("anti", 1, "dev")`` for ``anti_stereotyped_type1.txt.dev``; None for any other name."""
    m = FILE_NAME.match(name)
    if not m:
        return None
    return m.group(1), int(m.group(2)), m.group(3)  # type: ignore[return-value]


def item_id(split: str, stance: str, type_: int, index: int) -> str:
    """``wb-test-pro-t1-0001``: unique within a directory of official files."""
    return f"wb-{split}-{stance}-t{type_}-{index:04d}"


# --- text helpers -------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _occupation_pattern() -> re.Pattern[str]:
    """Any of the 40 names (either spelling) as a whole word, longest first (``construction worker``)."""
    names = sorted(occupation_index(), key=len, reverse=True)
    return re.compile(r"(?<![\w-])(" + "|".join(re.escape(n) for n in names) + r")(?![\w-])", re.IGNORECASE)


def occupation_mentions(text: str) -> list[tuple[int, int, Occupation]]:
    """``(start, end, occupation)`` for every occupation named in ``text``, in order."""
    return [(m.start(), m.end(), lookup_occupation(m.group(1))) for m in _occupation_pattern().finditer(text)]  # type: ignore[misc]


def detokenize(text: str) -> str:
    """Undo tokeniser spacing: ``farmer 's`` -> ``farmer's``, ``did n't`` -> ``didn't``, ``end .`` -> ``end.``."""
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r" (?=(?:'s|'re|'ll|'ve|'d|'m|n't)\b)", "", text, flags=re.IGNORECASE)
    return re.sub(r" (?=[.,;:!?](?: |$))", "", text)


def _drop_doubled_determiner(text: str) -> str:
    """``the [the chief]`` -> ``[the chief]`` (keeping a capital: ``The [the chief]`` -> ``[The chief]``)."""

    def repl(m: re.Match[str]) -> str:
        inner = m.group(2)
        if m.group(1)[0].isupper():
            inner = inner[0].upper() + inner[1:]
        return "[" + inner

    return re.sub(rf"\b({_DETERMINER})\s+\[\s*({_DETERMINER}\s)", repl, text, flags=re.IGNORECASE)


def _strip_determiners(phrase: str) -> str:
    return re.sub(rf"^(?:{_DETERMINER}\s+)+", "", phrase.strip(), flags=re.IGNORECASE).strip()


def _expected_stance(gender: str, occ: Occupation) -> Stance:
    if gender == "neutral":
        return "neutral"
    return "pro" if gender == occ.stereotype else "anti"


# --- one line -----------------------------------------------------------------------------------

def parse_line(line: str, *, type_: int, stance: Stance, split: Split, source: str) -> Item:
    """Parse one ``<index> <sentence>`` line into an :class:`Item`.

    ``source`` (e.g. ``"anti_stereotyped_type1.txt.dev:17"``) becomes ``Item.source`` and prefixes
    every error. Raises :class:`LineError` naming the reason.
    """
    def fail(reason: str) -> LineError:
        return LineError(source, reason)

    m = re.match(r"^\s*(\d+)\s+(.*\S)\s*$", line.rstrip("\r\n"))
    if not m:
        raise fail("expected '<index> <sentence>'" + (" (the line is empty)" if not line.strip() else ""))
    index, text = int(m.group(1)), _drop_doubled_determiner(m.group(2))

    # Brackets: flat, balanced; collect their contents and build the plain sentence.
    spans = list(re.finditer(r"\[([^\[\]]*)\]", text))
    outside = re.sub(r"\[[^\[\]]*\]", "", text)
    if "[" in outside or "]" in outside:
        raise fail("unbalanced or nested [ ] brackets")
    if len(spans) < 2:
        raise fail(f"needs a bracketed referent and at least one bracketed pronoun, found {len(spans)} bracket(s)")
    contents = [s.group(1).strip() for s in spans]
    sentence = detokenize(re.sub(r"\[([^\[\]]*)\]", lambda s: s.group(1).strip(), text))

    referent_phrase = _strip_determiners(contents[0])
    referent = lookup_occupation(referent_phrase)
    if referent is None:
        raise fail(f"referent [{contents[0]}] is not one of the 40 WinoBias occupations")

    pronouns = [c.lower() for c in contents[1:]]
    for p in pronouns:
        if p not in PRONOUN_GENDER:
            raise fail(f"[{p}] after the referent is not a pronoun")
    genders = {PRONOUN_GENDER[p] for p in pronouns}
    if len(genders) > 1:
        raise fail(f"the bracketed pronouns disagree in gender: {', '.join(pronouns)}")
    pronoun = pronouns[0]
    gender = PRONOUN_GENDER[pronoun]

    distinct: list[str] = []
    for _, _, occ in occupation_mentions(sentence):
        if occ.name not in distinct:
            distinct.append(occ.name)
    if len(distinct) < 2:
        raise fail(f"names {len(distinct)} occupation(s) ({', '.join(distinct) or 'none'}); two candidates are needed")
    candidates = (distinct[0], distinct[1])
    if referent.name not in candidates:
        raise fail(f"referent {referent.name!r} is not one of the first two occupations named {candidates}")

    expected = _expected_stance(gender, referent)
    if expected != stance:
        raise fail(
            f"stance {stance!r} (from the file name) disagrees with the occupations table: pronoun "
            f"{pronoun!r} ({gender}) for {referent.name!r} ({referent.stereotype}-stereotyped) is {expected!r}"
        )

    return Item(
        id=item_id(split, stance, type_, index),
        sentence=sentence,
        pronoun=pronoun,
        gender=gender,
        candidates=candidates,
        referent=referent.name,
        type=type_,  # type: ignore[arg-type]
        stance=stance,
        split=split,
        source=source,
    )


def format_official_line(item: Item, index: int) -> str:
    """Render ``item`` as an official line, ``parse_line``'s inverse for items it produced.

    Brackets the first mention of the referent (with its determiner) and the first occurrence of
    ``item.pronoun`` after it; further pronouns of the original line are not recovered (an
    ``Item`` keeps only the first). Raises ValueError if either cannot be found in the sentence.
    """
    s = item.sentence
    mention = next((m for m in occupation_mentions(s) if m[2].name == item.referent), None)
    if mention is None:
        raise ValueError(f"{item.id}: referent {item.referent!r} not found in {s!r}")
    start, end, _ = mention
    det = re.search(rf"\b{_DETERMINER}\s+$", s[:start], flags=re.IGNORECASE)
    if det:
        start = det.start()
    p = re.compile(rf"(?<![\w-]){re.escape(item.pronoun)}(?![\w-])", re.IGNORECASE).search(s, end)
    if p is None:
        raise ValueError(f"{item.id}: pronoun {item.pronoun!r} not found after the referent in {s!r}")
    out = s[:start] + "[" + s[start:end] + "]" + s[end : p.start()] + "[" + p.group(0) + "]" + s[p.end() :]
    return f"{index} {out}"


# --- a directory --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Problem:
    file: str
    line: int
    reason: str


def _winobias_files(path: Path) -> list[Path]:
    try:
        path.exists()
    except OSError as exc:  # a name too long for the file system, a symlink loop
        shown = str(path) if len(str(path)) <= 80 else f"{str(path)[:60]}…({len(str(path))} characters)"
        raise DataError(f"--data '{shown}': {exc.strerror}") from None
    if not path.exists():
        raise DataError(f"{path}: no such directory (expected the WinoBias files {{pro,anti}}_stereotyped_type{{1,2}}.txt.{{dev,test}})")
    if not path.is_dir():
        raise DataError(f"{path}: not a directory (expected a directory of WinoBias files)")
    order = {name: k for k, name in enumerate(official_file_names())}
    for entry in path.iterdir():  # a WinoBias name that is not a readable file is an error, never skipped
        if entry.name in order and not entry.is_file():
            if entry.is_symlink() and not entry.exists():
                raise DataError(f"{entry}: a symbolic link that points nowhere or loops (expected a WinoBias file)")
            raise DataError(f"{entry}: {'a directory' if entry.is_dir() else 'not a regular file'}, not a WinoBias file")
    files = sorted((p for p in path.iterdir() if p.is_file() and p.name in order), key=lambda p: order[p.name])
    if not files:
        raise DataError(
            f"{path}: no WinoBias files in this directory (expected {{pro,anti}}_stereotyped_type{{1,2}}.txt.{{dev,test}})"
        )
    return files


def _read_lines(file: Path) -> Iterator[tuple[int, str | None]]:
    """``(line_number, text)``; text is None for a line that is not UTF-8. Works without a final newline."""
    data = file.read_bytes()
    data = data[3:] if data.startswith(b"\xef\xbb\xbf") else data  # a UTF-8 byte-order mark is not content
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            yield number, raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError:
            yield number, None


def _scan_file(file: Path) -> Iterator[Item | _Problem]:
    stance, type_, split = parse_file_name(file.name)  # type: ignore[misc]
    first_line_of: dict[str, int] = {}
    holds_text = False
    for number, text in _read_lines(file):
        if text is None:
            holds_text = True  # an undecodable line is text all the same, reported as such
            yield _Problem(file.name, number, "not UTF-8 text")
            continue
        holds_text = holds_text or bool(text.strip())
        if "\x00" in text:
            yield _Problem(file.name, number, "contains a NUL byte (\\x00): the file is binary or corrupt")
            continue
        if not text.strip():
            continue  # blank lines (e.g. a trailing newline) carry no item
        try:
            item = parse_line(text, type_=type_, stance=stance, split=split, source=f"{file.name}:{number}")
        except LineError as e:
            yield _Problem(file.name, number, e.reason)
            continue
        if item.id in first_line_of:
            index = int(item.id.rsplit("-", 1)[1])
            yield _Problem(file.name, number, f"duplicate index {index} (first on line {first_line_of[item.id]})")
            continue
        first_line_of[item.id] = number
        yield item
    if not holds_text:
        yield _Problem(file.name, 1, "the file holds no items (it is empty or only blank lines)")


def load_winobias_dir(path: str | Path, *, strict: bool = True) -> list[Item]:
    """All items of the official WinoBias files in ``path`` (other files are ignored).

    Files load in the order of :func:`official_file_names`, lines in file order. ``strict``: the
    first bad line raises DataError ``"FILE:LINE: reason"``; otherwise bad lines are skipped (use
    :func:`validate_winobias_dir` to list them). A missing directory, or one without any WinoBias
    file, raises DataError naming it.
    """
    items: list[Item] = []
    for file in _winobias_files(Path(path)):
        for result in _scan_file(file):
            if isinstance(result, _Problem):
                if strict:
                    raise DataError(f"{result.file}:{result.line}: {result.reason}")
                continue
            items.append(result)
    return items


def _check_occupation_list(file: Path, stereotype: str) -> Iterator[_Problem]:
    """``male_occupations.txt`` / ``female_occupations.txt`` must agree with the occupations table."""
    for number, text in _read_lines(file):
        if text is None:
            yield _Problem(file.name, number, "not UTF-8 text")
            continue
        if not text.strip():
            continue
        occ = lookup_occupation(text)
        if occ is None:
            yield _Problem(file.name, number, f"{text.strip()!r} is not one of the 40 WinoBias occupations")
        elif occ.stereotype != stereotype:
            yield _Problem(file.name, number, f"{occ.name!r} is {occ.stereotype}-stereotyped in the occupations table")


@dataclass
class ValidationReport:
    """What ``bias-audit data validate DIR`` prints: counts of the parsed items and every bad line."""

    directory: str
    n_items: int = 0
    by_file: dict[str, int] = field(default_factory=dict)
    by_split: dict[str, int] = field(default_factory=dict)
    by_type: dict[str, int] = field(default_factory=dict)
    by_stance: dict[str, int] = field(default_factory=dict)
    by_gender: dict[str, int] = field(default_factory=dict)
    by_occupation: dict[str, int] = field(default_factory=dict)
    by_occupation_gender: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[tuple[str, int, str]] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)
    twin_notes: list[str] = field(default_factory=list)  # non-minimal twin pairs, items without a twin (not errors)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {
            "directory": self.directory,
            "items": self.n_items,
            "errors": [{"file": f, "line": n, "reason": r} for f, n, r in self.problems],
            "by_file": self.by_file,
            "by_split": self.by_split,
            "by_type": self.by_type,
            "by_stance": self.by_stance,
            "by_gender": self.by_gender,
            "by_occupation": self.by_occupation,
            "by_occupation_gender": self.by_occupation_gender,
            "missing_files": self.missing_files,
            "twin_notes": self.twin_notes,
        }

    def format_text(self) -> str:
        def counts(d: dict) -> str:
            return ", ".join(f"{k} {v}" for k, v in d.items()) or "none"

        lines = [f"{self.directory}: {self.n_items} items, {len(self.problems)} error(s)"]
        lines += [f"  {name}: {n}" for name, n in self.by_file.items()]
        if self.missing_files:
            lines.append(f"  missing (not an error): {', '.join(self.missing_files)}")
        lines.append(f"split: {counts(self.by_split)}")
        lines.append(f"type: {counts(self.by_type)}")
        lines.append(f"stance: {counts(self.by_stance)}")
        lines.append(f"gender: {counts(self.by_gender)}")
        lines.append("occupation as referent (male/female):")
        for occ, n in self.by_occupation.items():
            g = self.by_occupation_gender.get(occ, {})
            lines.append(f"  {occ}: {n} ({g.get('male', 0)}/{g.get('female', 0)})")
        if self.twin_notes:
            lines.append("twins that are not minimal pairs, or have no twin (config non_minimal_pairs decides their use):")
            lines += [f"  {note}" for note in self.twin_notes]
        if self.problems:
            lines.append("errors:")
            lines += [f"  {f}:{n}: {r}" for f, n, r in self.problems]
        return "\n".join(lines)


def validate_winobias_dir(path: str | Path) -> ValidationReport:
    """Parse every line in ``path`` and report counts and all bad lines (nothing raises for a bad line).

    Also checks ``male_occupations.txt`` / ``female_occupations.txt`` against the occupations table
    when present. A missing directory, or one without any WinoBias file, raises DataError.
    """
    path = Path(path)
    files = _winobias_files(path)
    report = ValidationReport(directory=str(path))
    present = {f.name for f in files}
    report.missing_files = [n for n in official_file_names() if n not in present]
    items: list[Item] = []
    for file in files:
        report.by_file[file.name] = 0
        for result in _scan_file(file):
            if isinstance(result, _Problem):
                report.problems.append((result.file, result.line, result.reason))
            else:
                report.by_file[file.name] += 1
                items.append(result)
    for name, stereotype in OCCUPATION_LISTS.items():
        if (path / name).is_file():
            report.problems += [(p.file, p.line, p.reason) for p in _check_occupation_list(path / name, stereotype)]

    report.n_items = len(items)
    report.by_split = dict(Counter(i.split for i in items))
    report.by_type = {str(k): v for k, v in Counter(i.type for i in items).items()}
    report.by_stance = dict(Counter(i.stance for i in items))
    report.by_gender = dict(Counter(i.gender for i in items))
    per_occ = Counter(i.referent for i in items)
    per_occ_gender = Counter((i.referent, i.gender) for i in items)
    genders = sorted({i.gender for i in items}, key=["male", "female", "neutral"].index)
    for occ in occupations():  # table order, every occupation listed (0 = never a referent)
        report.by_occupation[occ.name] = per_occ[occ.name]
        report.by_occupation_gender[occ.name] = {g: per_occ_gender[(occ.name, g)] for g in genders}
    return report
