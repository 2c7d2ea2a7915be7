"""Measured scoring speed, kept beside the result cache (table ``throughput`` in the same SQLite file) so
that ``bias-audit plan`` can estimate a run's time before any weights load.

One row per (model key, condition): the requests the model last scored under that condition, the
token positions it ran and the seconds it took (cache hits excluded), the device type, and the model's
name as audited. The model key is the result cache's (``CachedBackend.model_key``), so ``plan`` also
learns which cache rows belong to a model it has not loaded. Written by rank 0 only, after each
condition a run measured with the result cache on.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS throughput ("
    " model_key TEXT NOT NULL, condition TEXT NOT NULL, model TEXT NOT NULL, device TEXT NOT NULL,"
    " requests INTEGER NOT NULL, tokens INTEGER NOT NULL, seconds REAL NOT NULL, updated REAL NOT NULL,"
    " PRIMARY KEY (model_key, condition))"
)


@dataclass(frozen=True)
class Throughput:
    model_key: str
    condition: str
    model: str
    device: str
    requests: int
    tokens: int
    seconds: float
    updated: float

    @property
    def seconds_per_request(self) -> float:
        return self.seconds / self.requests


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), timeout=60.0, isolation_level=None)
    db.execute("PRAGMA busy_timeout = 60000")
    db.execute(_SCHEMA)
    return db


def record_throughput(path: Path, model_key: str, model: str, condition: str, device: str, *,
                      requests: int, tokens: int, seconds: float) -> None:
    """Store a condition's measured speed (replacing the earlier measurement). Best effort: a cache file
    that cannot be written already failed louder elsewhere."""
    if requests <= 0 or seconds <= 0:
        return
    try:
        db = _connect(Path(path))
        try:
            db.execute("INSERT OR REPLACE INTO throughput VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (model_key, condition, model, device, int(requests), int(tokens), float(seconds), time.time()))
        finally:
            db.close()
    except sqlite3.Error:
        pass


def measured(path: Path, model: str) -> list[Throughput]:
    """Every stored measurement of the model audited as ``model``, newest first."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        db = _connect(path)
        try:
            rows = db.execute("SELECT * FROM throughput WHERE model = ? ORDER BY updated DESC", (model,)).fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return []
    return [Throughput(*row) for row in rows]
