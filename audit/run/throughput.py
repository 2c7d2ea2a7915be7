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


@dataclass(frozen=True)
class KindRates:
    """This machine's measured cost of each request kind for one model, from a few real requests of the
    preset at hand (``measure_rates``): seconds per computed prompt token (likelihood scoring; also a
    generation prompt's cost) and seconds per generated token."""

    seconds_per_token: float
    seconds_per_new_token: float | None  # None: the preset generates nothing
    basis: str

    def estimate(self, kind: str, computed_tokens: int, new_tokens: int = 0) -> float:
        seconds = computed_tokens * self.seconds_per_token
        if kind == "generate":
            seconds += new_tokens * (self.seconds_per_new_token or 0.0)
        return seconds


def _timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def measure_rates(backend, likelihood_sample: list, likelihood_tokens: int, generation_sample: list,
                  generation_tokens: int) -> KindRates:
    """Time a few real requests on ``backend`` (uncached): ``likelihood_sample`` (Request objects that share
    their prefix, ``likelihood_tokens`` computed tokens in all) and ``generation_sample`` ((prompt,
    max_new_tokens) pairs of one max_new_tokens, ``generation_tokens`` computed prompt tokens). A first
    request of each kind warms the engine and is not counted."""
    backend.loglikelihood(likelihood_sample[:1])
    lik_s = _timed(lambda: backend.loglikelihood(likelihood_sample))
    per_token = lik_s / max(likelihood_tokens, 1)
    basis = f"measured now: {len(likelihood_sample)} likelihood requests in {lik_s:.2f} s"
    per_new = None
    if generation_sample:
        prompts = [p for p, _ in generation_sample]
        budget = generation_sample[0][1]
        backend.generate(prompts[:1], max_new_tokens=budget)
        gen_s = _timed(lambda: backend.generate(prompts, max_new_tokens=budget))
        new_tokens = len(prompts) * budget
        per_new = max(gen_s - generation_tokens * per_token, 0.1 * gen_s) / new_tokens
        basis += f", {len(prompts)} generations in {gen_s:.2f} s"
    return KindRates(per_token, per_new, basis)
