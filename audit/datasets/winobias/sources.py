"""Where the audit's items come from: the generated benchmark, WinoBias (cache/download/hub) or a directory.

``load_items("winobias")`` looks in this order:

1. the cache (``$BIAS_AUDIT_CACHE_DIR`` or ``~/.cache/bias-transfer-audit``, folder ``winobias``);
2. the official files from the WinoBias repository (``uclanlp/corefBias`` at a pinned commit), each
   checked against its SHA-256 and then kept in the cache: these are the exact files the parser is
   tested on (all 3,168 lines);
3. the Hugging Face hub copy ``uclanlp/wino_bias`` through the optional ``datasets`` library
   (``pip install bias-transfer-audit[hub]``), converted from its CoNLL tokens and coreference spans
   to official lines and parsed by the same parser.

Offline with nothing cached, it fails with one line telling the user to pass ``--data DIR``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.request
from pathlib import Path
from typing import Any, Iterable

from audit.errors import DataError
from audit.paths import cache_dir
from audit.datasets.winobias.generated import generate_items
from audit.datasets.winobias.items import Item
from audit.datasets.winobias.official import detokenize, load_winobias_dir, official_file_names, parse_line

OFFICIAL_COMMIT = "0bce984dd081bbc10b0622f326727a024c607895"
OFFICIAL_URL = f"https://raw.githubusercontent.com/uclanlp/corefBias/{OFFICIAL_COMMIT}/WinoBias/wino/data/{{name}}"
HUB_DATASET = "uclanlp/wino_bias"
HUB_SPLITS = {"dev": "validation", "test": "test"}

# SHA-256 of the eight files at OFFICIAL_COMMIT.
OFFICIAL_SHA256 = {
    "anti_stereotyped_type1.txt.dev": "a4e0ebae344e78b56f657a42e8ae684b9db7747d177c5e7149c0907ebb7f3bf6",
    "anti_stereotyped_type1.txt.test": "331db5bd74bfefebf146a60b67645152a4a1991570d2a56f57154103ac361dd2",
    "anti_stereotyped_type2.txt.dev": "763ad829ad724f9a85ead689ba8ca69072020cb1238def6210f0fc6a47b97e59",
    "anti_stereotyped_type2.txt.test": "336571ac1ea8c06cd2aba8e5dd2bd98e00acc0c48da3e4ec5ec7e54eb2633a8f",
    "pro_stereotyped_type1.txt.dev": "dd55a0d220fe4c0ceb63dd4648223fb4fe1a58d5ad95c116a002ad24b0e292a5",
    "pro_stereotyped_type1.txt.test": "db7838907238a758eeb5779e48f38c013b892910d6fe864456c59f04245c6689",
    "pro_stereotyped_type2.txt.dev": "8f0250de723cea9328e3eaf7169e07936f01aa5909ce7aa580db66eb803f4e86",
    "pro_stereotyped_type2.txt.test": "ea1c1fd94fa612e3cc44d7fa3cc4cb76021bb63fdf94f9826f430051e9052438",
}

_DATA_HINT = "pass --data DIR with the official WinoBias files ({pro,anti}_stereotyped_type{1,2}.txt.{dev,test})"


def winobias_cache_dir() -> Path:
    return cache_dir() / "winobias"


def load_items(
    source: str = "generated", *, split: str | None = "test", seed: int = 0, neutral: bool = False
) -> list[Item]:
    """The items of ``source``: ``"generated"`` (our templated benchmark), ``"winobias"`` (cached,
    downloaded or from the hub) or a directory of official WinoBias files.

    ``split`` keeps ``"dev"`` or ``"test"`` items (None keeps both). ``seed`` and ``neutral``
    (they/them items) apply to the generated benchmark; WinoBias has no neutral items.
    """
    if split not in ("dev", "test", None):
        raise DataError(f"split must be 'dev', 'test' or None (all), not {split!r}")
    if source == "generated":
        items = generate_items(seed=seed, neutral=neutral)
    else:
        if neutral:
            raise DataError(f"neutral (they/them) items exist only in the generated benchmark, not in {source!r}")
        if source == "winobias":
            items = load_winobias()
        else:
            path = Path(source).expanduser()
            if not path.exists():
                raise DataError(f"{source}: no such directory (the data source is 'generated', 'winobias' or a directory of WinoBias files)")
            items = load_winobias_dir(path, strict=True)
    return [i for i in items if split is None or i.split == split]


def data_fingerprint(items: Iterable[Item]) -> str:
    """SHA-256 (hex) of the items' canonical JSON dicts, independent of their order.

    Two runs scored the same items exactly when their fingerprints match (metrics do not depend on
    item order, so neither does the fingerprint).
    """
    lines = sorted(json.dumps(i.to_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":")) for i in items)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


# --- WinoBias: cache, official download, hub ------------------------------------------------------

def load_winobias() -> list[Item]:
    """All 3,168 WinoBias items: from the cache, else downloaded (then cached), else from the hub."""
    cached = winobias_cache_dir()
    if all((cached / name).is_file() for name in official_file_names()):
        return load_winobias_dir(cached)
    try:
        download_winobias(cached)
        return load_winobias_dir(cached)
    except OSError as download_error:  # URLError, timeouts, refused connections are OSErrors
        reason = _one_line(download_error)
    try:
        items = load_winobias_from_hub()
    except ImportError:
        hub = "the optional 'datasets' library for the Hugging Face hub is not installed"
    except DataError:
        raise
    except Exception as hub_error:  # the hub client raises many kinds when offline
        hub = f"the Hugging Face hub failed too ({_one_line(hub_error)})"
    else:
        return items
    raise DataError(f"WinoBias is not cached in {cached} and cannot be downloaded ({reason}; {hub}); {_DATA_HINT}")


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:200]


def _fetch(url: str, timeout: float = 30.0) -> bytes:
    """The bytes at ``url`` (raises OSError when offline). Tests replace this function."""
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (fixed https URL)
        return response.read()


def download_winobias(dest: Path) -> Path:
    """Download the eight official files into ``dest``, checking each SHA-256; returns ``dest``.

    Files are written atomically (temporary name, then rename), so an interrupted download never
    leaves a partial file that a later run would take for the cache.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for name in official_file_names():
        target = dest / name
        if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == OFFICIAL_SHA256[name]:
            continue
        data = _fetch(OFFICIAL_URL.format(name=name))
        digest = hashlib.sha256(data).hexdigest()
        if digest != OFFICIAL_SHA256[name]:
            raise DataError(f"downloaded {name} has SHA-256 {digest}, expected {OFFICIAL_SHA256[name]}; {_DATA_HINT}")
        fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{name}.")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    return dest


def _hub_rows(config: str, split: str) -> list[dict[str, Any]]:
    """Rows of ``uclanlp/wino_bias`` (``config`` like ``type1_pro``, split ``validation``/``test``)."""
    import datasets  # optional extra: raises ImportError when absent

    return list(datasets.load_dataset(HUB_DATASET, config, split=split))


def hub_row_to_line(row: dict[str, Any], index: int) -> str:
    """An official ``<index> <sentence>`` line from a hub row: its tokens, with the gold cluster's
    spans (``coreference_clusters``: flattened ``[start, end, ...]`` word numbers, referent first)
    put in brackets."""
    tokens = list(row["tokens"])
    positions = {int(w): k for k, w in enumerate(row.get("word_number") or range(len(tokens)))}
    bounds = [int(x) for x in row["coreference_clusters"]]
    if len(bounds) < 4 or len(bounds) % 2:
        raise DataError(f"{HUB_DATASET} row {index}: expected a referent and a pronoun span, got {bounds}")
    for start, end in zip(bounds[::2], bounds[1::2]):
        tokens[positions[start]] = "[" + tokens[positions[start]]
        tokens[positions[end]] = tokens[positions[end]] + "]"
    return f"{index} {detokenize(' '.join(tokens))}"


def load_winobias_from_hub() -> list[Item]:
    """WinoBias from the Hugging Face hub, through the same parser as the official files."""
    items: list[Item] = []
    for name in official_file_names():
        stance, rest = name.split("_stereotyped_type")
        type_, split = int(rest[0]), rest.rsplit(".", 1)[1]
        config = f"type{type_}_{stance}"
        for k, row in enumerate(_hub_rows(config, HUB_SPLITS[split]), start=1):
            line = hub_row_to_line(row, k)
            items.append(parse_line(line, type_=type_, stance=stance, split=split, source=f"hub:{config}/{HUB_SPLITS[split]}:{k}"))  # type: ignore[arg-type]
    return items
