"""Reading the official CrowS-Pairs file (``crows_pairs_anonymized.csv``, nyu-mll/crows-pairs) and the
source syntax ``DIR_OR_FILE[#min_agreement=K;bias_types=a,b]``.

Every malformed row is one :class:`~audit.errors.DataError` naming ``file:line`` (the line the CSV
record starts on; a quoted sentence may span lines).
"""

from __future__ import annotations

import ast
import csv
import hashlib
from pathlib import Path

from audit.errors import DataError

from .items import CrowsPair

FILE_NAME = "crows_pairs_anonymized.csv"
COLUMNS = ("", "sent_more", "sent_less", "stereo_antistereo", "bias_type", "annotations", "anon_writer", "anon_annotators")
DIRECTIONS = ("stereo", "antistereo")
OFFICIAL_COUNTS = {
    "race-color": 516, "gender": 262, "socioeconomic": 172, "nationality": 159, "religion": 105, "age": 87,
    "sexual-orientation": 84, "physical-appearance": 63, "disability": 60,
}
BIAS_TYPES = tuple(OFFICIAL_COUNTS)
OFFICIAL_TOTAL = 1508
OFFICIAL_SHA256 = "dfb36986ce0502abbaf7055b9176da3d08d48e07df1251991b5dfbcbceab9d0c"
ANNOTATORS = 5


def resolve_file(where: str | Path) -> Path:
    """The CSV itself, or ``crows_pairs_anonymized.csv`` inside a directory."""
    path = Path(where)
    if path.is_dir():
        path = path / FILE_NAME
    if not path.is_file():
        raise DataError(f"CrowS-Pairs: no file {path} (give the directory holding {FILE_NAME}, or the file)")
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _literal_list(text: str, where: str, column: str) -> list:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise DataError(f"{where}: column '{column}' is not a Python-literal list: {text[:60]!r}") from None
    if not isinstance(value, list):
        raise DataError(f"{where}: column '{column}' is not a list: {text[:60]!r}")
    return value


def _parse_row(row: list[str], where: str) -> CrowsPair:
    if len(row) != len(COLUMNS):
        raise DataError(f"{where}: expected {len(COLUMNS)} columns, found {len(row)}")
    index, more, less, direction, bias_type, annotations, _writer, annotators = row
    if not index.strip().isdigit():
        raise DataError(f"{where}: row index {index!r} is not a non-negative integer")
    if not more.strip() or not less.strip():
        raise DataError(f"{where}: empty {'sent_more' if not more.strip() else 'sent_less'}")
    if more == less:
        raise DataError(f"{where}: sent_more and sent_less are the same sentence")
    if direction not in DIRECTIONS:
        raise DataError(f"{where}: stereo_antistereo is {direction!r}, expected one of {', '.join(DIRECTIONS)}")
    if bias_type not in OFFICIAL_COUNTS:
        raise DataError(f"{where}: unknown bias_type {bias_type!r} (known: {', '.join(BIAS_TYPES)})")
    labels = _literal_list(annotations, where, "annotations")
    if not labels or not all(isinstance(x, list) and all(isinstance(t, str) for t in x) for x in labels):
        raise DataError(f"{where}: column 'annotations' must be a non-empty list of lists of bias types")
    _literal_list(annotators, where, "anon_annotators")
    return CrowsPair(index=int(index), sent_more=more, sent_less=less, direction=direction, bias_type=bias_type,
                     agreement=sum(bias_type in x for x in labels), annotators=len(labels), source=where)


def scan_file(path: str | Path) -> tuple[list[CrowsPair], list[str]]:
    """Every well-formed pair in file order, and one ``file:line: problem`` per bad row (a bad header or
    unreadable file is a DataError at once)."""
    path = Path(path)
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise DataError(f"CrowS-Pairs: cannot read {path}: {exc.strerror}") from None
    pairs: list[CrowsPair] = []
    errors: list[str] = []
    seen: dict[int, str] = {}
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None or tuple(header) != COLUMNS:
                raise DataError(f"{path}:1: header must be {','.join(COLUMNS)} (the official file's columns)")
            start = reader.line_num + 1
            for row in reader:
                where = f"{path}:{start}"
                start = reader.line_num + 1
                if not row:
                    continue
                try:
                    pair = _parse_row(row, where)
                    if pair.index in seen:
                        raise DataError(f"{where}: row index {pair.index} repeats {seen[pair.index]}")
                except DataError as exc:
                    errors.append(str(exc))
                    continue
                seen[pair.index] = where
                pairs.append(pair)
        except csv.Error as exc:
            raise DataError(f"{path}:{reader.line_num}: malformed CSV ({exc})") from None
        except UnicodeDecodeError:
            raise DataError(f"{path}: not UTF-8 text") from None
    if not pairs and not errors:
        errors.append(f"{path}: no pairs")
    return pairs, errors


def parse_file(path: str | Path) -> list[CrowsPair]:
    """Every pair of the CSV, in file order; DataError naming ``file:line`` of the first bad row."""
    pairs, errors = scan_file(path)
    if errors:
        more = f" (and {len(errors) - 1} more bad rows; see bias-audit data validate)" if len(errors) > 1 else ""
        raise DataError(errors[0] + more)
    return pairs


def parse_source(source: str) -> tuple[str, int, tuple[str, ...] | None]:
    """``DIR#min_agreement=4;bias_types=gender,age`` -> (DIR, 4, ("gender", "age")); defaults (DIR, 0, None)."""
    where, _, options = source.partition("#")
    if not where:
        raise DataError("--data crows-pairs:SOURCE: give the directory holding crows_pairs_anonymized.csv "
                        "(e.g. crows-pairs:../shared/crows_pairs#min_agreement=4)")
    min_agreement, types = 0, None
    for part in filter(None, (p.strip() for p in options.split(";"))):
        key, eq, value = (s.strip() for s in part.partition("="))
        if not eq:
            raise DataError(f"--data crows-pairs:{source}: '{part}' is not OPTION=VALUE (options: min_agreement, bias_types)")
        if key == "min_agreement":
            if not value.isdigit() or int(value) > ANNOTATORS:
                raise DataError(f"--data crows-pairs:{source}: min_agreement must be 0..{ANNOTATORS} "
                                f"(validators who chose the pair's bias type), got {value!r}")
            min_agreement = int(value)
        elif key == "bias_types":
            types = tuple(t.strip() for t in value.split(",") if t.strip())
            unknown = [t for t in types if t not in OFFICIAL_COUNTS]
            if not types or unknown:
                raise DataError(f"--data crows-pairs:{source}: unknown bias type "
                                f"'{unknown[0] if unknown else value}' (known: {', '.join(BIAS_TYPES)})")
        else:
            raise DataError(f"--data crows-pairs:{source}: unknown option '{key}' (options: min_agreement, bias_types)")
    return where, min_agreement, types


def select(pairs: list[CrowsPair], min_agreement: int = 0, bias_types: tuple[str, ...] | None = None) -> list[CrowsPair]:
    """The pairs at least ``min_agreement`` of whose validators chose their bias type, of ``bias_types``."""
    return [p for p in pairs if p.agreement >= min_agreement and (bias_types is None or p.bias_type in bias_types)]
