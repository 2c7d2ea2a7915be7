"""The official BBQ files (nyu-mll/BBQ, Parrish et al. 2022): parse, verify, download.

One jsonl file per category (``<Category>.jsonl``). A bad line stops with one error naming
``file:line``; the SHA-256 of each file whose name is pinned below is checked.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterable

from audit.errors import DataError

from .items import CONDITIONS, POLARITIES, BBQItem
from .targets import biased_answer, stereotyped_answers

BBQ_CATEGORIES = (
    "Age", "Disability_status", "Gender_identity", "Nationality", "Physical_appearance",
    "Race_ethnicity", "Race_x_SES", "Race_x_gender", "Religion", "SES", "Sexual_orientation",
)

PINNED_COMMIT = "bea11bd97d79217245b5871acd247b9d6eb24598"
_RAW_URL = "https://raw.githubusercontent.com/nyu-mll/BBQ/{commit}/data/{category}.jsonl"
HUB_DATASET = ("oskarvanderwal/bbq", "All")  # the mirror lm-eval's BBQ task uses; only when `datasets` is installed

# SHA-256 of the official files at PINNED_COMMIT (example counts in comments).
PINNED_SHA256 = {
    "Age": "46e805b3fc2d8cbd26eeb8e8430d98cf7b2dc9c83574ff3674e8ce4f0fca2a60",  # 3,680
    "Disability_status": "375d40d9b71f056150264445ec189b13934998f3f49a1e311aa7578eb3b45e5f",  # 1,556
    "Nationality": "a583e74666aec0341ded8aa3983e7cad694eb24de72c254d28b2df3035720090",  # 3,080
    "Physical_appearance": "e48d7e13508565f4801574e611043470c25c95a0a62af3699cb5ee7cb02608fb",  # 1,576
    "Religion": "cb9555f9f3454a52cd2df85956b59bd7fcca5aa922c8527693b1164d08417616",  # 1,200
    "Sexual_orientation": "2c71036b9e7584fe589c42aef32c1a42bc01b9a5e9b1b8704342630cdb08cefd",  # 864
}
OFFICIAL_COUNTS = {
    "Age": 3680, "Disability_status": 1556, "Gender_identity": 5672, "Nationality": 3080,
    "Physical_appearance": 1576, "Race_ethnicity": 6880, "Race_x_SES": 11160,
    "Race_x_gender": 15960, "Religion": 1200, "SES": 6864, "Sexual_orientation": 864,
}

_REQUIRED = ("example_id", "question_index", "question_polarity", "context_condition", "category",
             "context", "question", "ans0", "ans1", "ans2", "label", "answer_info")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def item_from_record(record: dict, where: str, source: str | None = None, regenerated: bool = False) -> BBQItem:
    """Build a :class:`BBQItem` from one official record; ``where`` names it in errors,
    ``source`` (default ``where``) is recorded on the item."""
    missing = [k for k in _REQUIRED if k not in record]
    if missing:
        raise DataError(f"{where}: missing field(s) {', '.join(missing)}")
    polarity, condition = record["question_polarity"], record["context_condition"]
    if polarity not in POLARITIES:
        raise DataError(f"{where}: question_polarity must be neg or nonneg, got {polarity!r}")
    if condition not in CONDITIONS:
        raise DataError(f"{where}: context_condition must be ambig or disambig, got {condition!r}")
    answers = tuple(str(record[f"ans{i}"]) for i in range(3))
    info = record["answer_info"]
    try:
        pairs = [info[f"ans{i}"] for i in range(3)]
        texts = tuple(str(p[0]) if len(p) > 0 else "" for p in pairs)
        tags = tuple(str(p[1]) if len(p) > 1 else "" for p in pairs)
    except (KeyError, TypeError):
        raise DataError(f"{where}: answer_info must map ans0..ans2 to [text, group]") from None
    unknowns = [i for i, tag in enumerate(tags) if tag == "unknown"]
    if len(unknowns) != 1:
        raise DataError(f"{where}: answer_info must tag exactly one answer 'unknown', found {len(unknowns)}")
    label = record["label"]
    if not isinstance(label, int) or not 0 <= label <= 2:
        raise DataError(f"{where}: label must be 0, 1 or 2, got {label!r}")
    try:
        question_index = int(record["question_index"])
        example_id = int(record["example_id"])
    except (TypeError, ValueError):
        raise DataError(f"{where}: example_id and question_index must be integers") from None
    meta = record.get("additional_metadata") or {}
    groups = tuple(str(g) for g in (meta.get("stereotyped_groups") or ()))
    category = str(record["category"])
    stereotyped = stereotyped_answers(category, groups, tags, texts)
    biased = biased_answer(polarity, stereotyped, unknowns[0])
    extra = {k: meta[k] for k in ("version", "source") if k in meta}
    if len(stereotyped) != 1:
        extra["stereotyped_matches"] = len(stereotyped)
    return BBQItem(
        example_id=example_id, category=category, question_index=question_index,
        question_polarity=polarity, context_condition=condition,
        context=str(record["context"]), question=str(record["question"]), answers=answers,
        label=label, unknown_index=unknowns[0], biased_index=biased, target_unclear=biased is None,
        answer_groups=tags, stereotyped_groups=groups, subcategory=str(meta.get("subcategory", "None")),
        source=source or where, regenerated=regenerated, metadata=extra,
    )


def parse_file(path: Path, check_hash: bool = True) -> list[BBQItem]:
    """Parse one official jsonl file; one :class:`DataError` naming ``file:line`` on a bad line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    if check_hash and path.stem in PINNED_SHA256:
        actual = sha256_of(path)
        if actual != PINNED_SHA256[path.stem]:
            raise DataError(f"{path}: SHA-256 {actual[:16]}... does not match the official file "
                            f"({PINNED_SHA256[path.stem][:16]}..., nyu-mll/BBQ {PINNED_COMMIT[:10]}); "
                            f"restore the official file, or use --data bbq:official (downloaded and verified)")
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raise DataError(f"{path}:1: starts with a byte-order mark (save the file as UTF-8 without BOM)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not valid UTF-8") from None
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{number}: expected a JSON object")
        items.append(item_from_record(record, where, source=f"{path.name}:{number}"))
    if not items:
        raise DataError(f"{path}: empty file (no BBQ examples)")
    return items


def category_files(directory: Path) -> dict[str, Path]:
    """``{category: path}`` of the ``<Category>.jsonl`` files in ``directory`` (or its ``data/``)."""
    directory = Path(directory)
    if not directory.exists():
        raise DataError(f"{directory}: no such directory")
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory (pass the folder that holds <Category>.jsonl)")
    if not any(directory.glob("*.jsonl")) and (directory / "data").is_dir():
        directory = directory / "data"
    found = {}
    for path in sorted(directory.glob("*.jsonl")):
        if path.stem in BBQ_CATEGORIES:
            if not path.is_file():
                raise DataError(f"{path}: not a file")
            found[path.stem] = path
    return found


def parse_directory(directory: Path, categories: Iterable[str] | None = None,
                    check_hash: bool = True) -> dict[str, list[BBQItem]]:
    """Parse the official files present in ``directory``; categories asked for but absent are skipped."""
    files = category_files(directory)
    wanted = list(categories) if categories is not None else list(files)
    return {c: parse_file(files[c], check_hash=check_hash) for c in wanted if c in files}


def download(categories: Iterable[str], destination: Path, timeout: float = 30.0) -> dict[str, bool]:
    """Download the official files at :data:`PINNED_COMMIT` into ``destination``, checking SHA-256.

    Offline (or on any network error) it fails with one line telling the user to pass ``--data DIR``,
    unless the :mod:`datasets` package is installed and the hub mirror answers (a fallback).
    Returns ``{category: verified}``: False for a hub copy, whose bytes differ from the official
    file and so cannot be checked against the pinned SHA-256 (parse it with ``check_hash=False``).
    """
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    verified = {}
    for category in categories:
        target = destination / f"{category}.jsonl"
        if target.is_file() and (category not in PINNED_SHA256 or sha256_of(target) == PINNED_SHA256[category]):
            verified[category] = category in PINNED_SHA256
            continue
        url = _RAW_URL.format(commit=PINNED_COMMIT, category=category)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (fixed https URL)
                payload = response.read()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            if _hub_fallback(category, target):
                verified[category] = False
                continue
            reason = getattr(exc, "reason", exc)
            raise DataError(f"cannot download BBQ {category} from github.com/nyu-mll/BBQ ({reason}); "
                            f"offline, pass --data DIR with the official <Category>.jsonl files") from None
        expected = PINNED_SHA256.get(category)
        actual = hashlib.sha256(payload).hexdigest()
        if expected and actual != expected:
            raise DataError(f"downloaded BBQ {category} has SHA-256 {actual[:16]}..., expected "
                            f"{expected[:16]}...; refusing it (pass --data DIR with the official files)")
        tmp = target.with_suffix(".part")
        tmp.write_bytes(payload)
        os.replace(tmp, target)
        verified[category] = bool(expected)
    return verified


def _hub_fallback(category: str, target: Path) -> bool:
    """Write ``category`` from the hub mirror through ``datasets`` when it is installed; False otherwise."""
    try:
        import datasets  # noqa: PLC0415 (optional dependency)
    except ImportError:
        return False
    try:
        rows = datasets.load_dataset(*HUB_DATASET, split="test")
    except Exception:  # noqa: BLE001 (any hub failure means: no fallback)
        return False
    rows = [dict(row) for row in rows if row.get("category") == category]
    if not rows:
        return False
    with open(target, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    return True
