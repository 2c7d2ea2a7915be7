"""BBQ, the Bias Benchmark for QA (Parrish et al., Findings of ACL 2022), for the audit.

``load_bbq(source, categories, split, seed)`` returns ``{category: [BBQItem, ...]}``:

* ``source`` is a directory holding the official ``<Category>.jsonl`` files (or their parent,
  with ``data/`` and ``templates/``), or ``"official"`` to download them at a pinned commit
  (SHA-256 checked) into ``$BIAS_AUDIT_CACHE_DIR/bbq``;
* ``categories`` (default: those found) may name categories whose file is absent: they are
  *regenerated from the official templates* by our seeded port of the generator (``seed``),
  and every such item says so (``regenerated=True``);
* ``split``: BBQ has no official dev split. ``"dev"`` keeps a seeded ~10% of the 4-item example
  sets (the neg/nonneg x ambig/disambig variants of one filled template stay together), meant
  as the pool for few-shot examples; ``"test"`` keeps the rest; ``None`` keeps all.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable

from audit.errors import DataError

from .generator import generate_category
from .items import BBQItem
from .official import BBQ_CATEGORIES, category_files, download, parse_file

__all__ = ["BBQ_CATEGORIES", "BBQItem", "load_bbq", "templates_for"]

DEV_SHARE = 0.10


def _cache_dir() -> Path:
    root = os.environ.get("BIAS_AUDIT_CACHE_DIR") or "~/.cache/bias-transfer-audit"
    return Path(root).expanduser() / "bbq" / "data"


def templates_for(directory: Path) -> Path | None:
    """The official ``templates/`` folder beside or above a BBQ data folder, if there is one."""
    directory = Path(directory)
    for candidate in (directory / "templates", directory.parent / "templates"):
        if (candidate / "vocabulary.csv").is_file():
            return candidate
    return None


def _in_dev(item: BBQItem, seed: int) -> bool:
    key = f"{seed}:{item.category}:{item.example_id // 4}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64 < DEV_SHARE


def load_bbq(source: str | Path, categories: Iterable[str] | None = None, split: str | None = None,
             seed: int = 0) -> dict[str, list[BBQItem]]:
    if split not in (None, "dev", "test"):
        raise DataError(f"BBQ split must be dev, test or none, got {split!r}")
    wanted = None if categories is None else list(dict.fromkeys(categories))
    unknown = [c for c in wanted or () if c not in BBQ_CATEGORIES]
    if unknown:
        raise DataError(f"unknown BBQ category {unknown[0]!r} (known: {', '.join(BBQ_CATEGORIES)})")
    verified: dict[str, bool] = {}
    if str(source) == "official":
        verified = download(wanted or BBQ_CATEGORIES, _cache_dir())
        directory = _cache_dir()
    else:
        directory = Path(source)
    files = category_files(directory)
    if wanted is None:
        wanted = [c for c in BBQ_CATEGORIES if c in files]
        if not wanted:
            raise DataError(f"{directory}: no BBQ <Category>.jsonl files (known: {', '.join(BBQ_CATEGORIES)})")
    data: dict[str, list[BBQItem]] = {}
    for category in wanted:
        if category in files:
            data[category] = parse_file(files[category], check_hash=verified.get(category, True))
            continue
        templates = templates_for(directory)
        if templates is None:
            raise DataError(f"{directory}: no {category}.jsonl and no official templates/ to regenerate it from; "
                            f"pass --data DIR with the official files")
        data[category] = generate_category(category, templates, seed)
    if split is not None:
        data = {c: [i for i in items if _in_dev(i, seed) == (split == "dev")] for c, items in data.items()}
    return data
