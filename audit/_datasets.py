"""Loading the items to audit (interim: generated data only; the data layer replaces this)."""

from __future__ import annotations

import hashlib
import json
from typing import Sequence

from ._errors import DataError
from ._generated import generate_items
from ._items import Item


def load_items(source: str = "generated", *, split: str | None = "test", seed: int = 0, neutral: bool = False) -> list[Item]:
    if source != "generated":
        raise DataError(f"data source '{source}' is not supported yet")
    return [i for i in generate_items(seed=seed, neutral=neutral) if split is None or i.split == split]


def data_fingerprint(items: Sequence[Item]) -> str:
    h = hashlib.sha256()
    for item in items:
        h.update(json.dumps(item.to_dict(), sort_keys=True).encode())
    return h.hexdigest()
