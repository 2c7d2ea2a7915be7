"""The result cache: every score and generation a model produced, on disk (SQLite), so a repeated run
recomputes nothing and a killed run resumes where it stopped.

One row per request, keyed by the sha256 of (model key, kind, context, continuation or max_new_tokens).
The model key is the backend's ``cache_key()``: everything that changes a score (for the HF backend the
model's path or hub id, revision, weight hash, architecture, dtype, device type and tokenizer files).
``CachedBackend`` wraps any backend and commits newly scored requests by time and by count, whichever
comes first (every ``BIAS_AUDIT_CACHE_COMMIT_S`` seconds, default 5, or ``BIAS_AUDIT_CACHE_CHUNK``
rows), so a run killed with SIGKILL loses at most a few seconds of scoring, and Ctrl-C loses nothing
scored. A backend that batches internally (``loglikelihood_progressive``, the HF backend) gets all
misses in one call, batched exactly as an uncached run batches them, so cached and uncached runs
store the same scores; others get chunks sized to the commit interval. SQLite (WAL mode, a busy
timeout) keeps the file whole when several runs share it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from audit.prompts.stopping import StopRule
from audit.backends.base import Backend, WrappingBackend
from audit.backends.distributed import is_main_process
from audit.run import progress
from audit.errors import AuditError
from audit.paths import cache_dir

# Part of every key: bump it when scoring or generation changes what it returns for the same request,
# so results computed by an older version are never reused.
SCORING_VERSION = "2"  # 2: the fast engine (lm-eval BOS handling)
SCHEMA_VERSION = "1"
CACHE_FILE = "results.sqlite"
DEFAULT_CHUNK = 256  # likelihood requests committed together at most (and sent together to a backend that does not stream)
DEFAULT_COMMIT_S = 5.0  # ...and at least this often, so a kill loses at most a few seconds of scoring
DEFAULT_GENERATE_CHUNK = 16  # generations are slow: commit them more often
BUSY_TIMEOUT_S = 60.0
_LOOKUP_BATCH = 500  # keys per SELECT ... IN (...) (SQLite allows at least 999 parameters)

def default_cache_path() -> Path:
    """``$BIAS_AUDIT_CACHE_DIR/results.sqlite`` (default ``~/.cache/bias-transfer-audit``)."""
    return cache_dir() / CACHE_FILE


def cache_disabled_by_env() -> bool:
    return os.environ.get("BIAS_AUDIT_NO_CACHE", "").strip().lower() not in ("", "0", "false", "no")


def _positive_from_env(name: str, kind: type, default, what: str):
    """A positive setting from the environment (``kind`` int or float); one clear line when it is not."""
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = 0
    if not (value > 0 and math.isfinite(value)):
        raise AuditError(f"{name}='{raw}': expected {what}")
    return value


def _commit_seconds_from_env() -> float:
    return _positive_from_env("BIAS_AUDIT_CACHE_COMMIT_S", float, DEFAULT_COMMIT_S, "a positive number of seconds")


def _chunk_from_env(default: int) -> int:
    return _positive_from_env("BIAS_AUDIT_CACHE_CHUNK", int, default, "a positive whole number")


# --- keys -----------------------------------------------------------------------------------------


def _sha256_json(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def request_key(model_key: str, kind: str, context: str, target: str | int | list) -> str:
    """The row key of one request: ``kind`` is loglikelihood (target: the continuation) or generate
    (target: ``generation_target``)."""
    return _sha256_json([model_key, kind, context, target])


def generation_target(max_new_tokens: int, stop: StopRule | None = None) -> int | list:
    """A generation's key target: max_new_tokens, or with a stop rule [its token budget, the rule]."""
    return int(max_new_tokens) if stop is None else [stop.tokens(max_new_tokens), stop.key()]


# --- the store ------------------------------------------------------------------------------------


_CLEAR_HINT = "delete it (`bias-audit cache clear`) or run with --no-cache"


def _translate(path: Path, exc: BaseException) -> AuditError:
    """An SQLite or OS error on the cache file as one line naming the file and the way out."""
    text = (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)).strip()
    detail = text.splitlines()[0] if text else type(exc).__name__
    low = detail.lower()
    if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in low or "malformed" in low or "corrupt" in low):
        return AuditError(f"result cache '{path}' is corrupt ({detail}): {_CLEAR_HINT}")
    if "locked" in low or "busy" in low:
        return AuditError(f"result cache '{path}' is locked by another process ({detail}); try again, or run with --no-cache")
    if isinstance(exc, OSError) or "readonly" in low or "read-only" in low or "unable to open" in low:
        return AuditError(
            f"result cache '{path}' cannot be written ({detail}): set BIAS_AUDIT_CACHE_DIR to a writable directory, "
            "or run with --no-cache"
        )
    return AuditError(f"result cache '{path}': {detail}: {_CLEAR_HINT}")


@dataclass(frozen=True)
class ModelEntries:
    model_key: str
    model: str
    loglikelihood: int
    generate: int


class ResultCache:
    """Scores and generations on disk, one row per request. Every write is its own committed transaction."""

    def __init__(self, path: str | Path | None):
        """``path`` None: a store in memory, for the run alone (``--no-cache``: scores go through the
        same path as a cached run's, and nothing is written)."""
        self.path = Path(path).expanduser() if path is not None else Path(":memory:")
        try:
            if path is not None:
                if self.path.parent.exists() and not self.path.parent.is_dir():
                    raise NotADirectoryError(20, "Not a directory")
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path) if path is not None else ":memory:", timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise _translate(self.path, exc) from None
        with self._errors():
            self._db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a killed process loses no commit
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS results ("
                    " key TEXT PRIMARY KEY, model_key TEXT NOT NULL, model TEXT NOT NULL, kind TEXT NOT NULL,"
                    " value, created REAL NOT NULL) WITHOUT ROWID"
                )
                self._db.execute("CREATE INDEX IF NOT EXISTS results_model ON results (model_key)")
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            (version,) = self._db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
        if version != SCHEMA_VERSION:
            raise AuditError(f"result cache '{self.path}' has schema version {version}, this tool writes {SCHEMA_VERSION}: {_CLEAR_HINT}")

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """SQLite and OS errors on the file become one-line AuditErrors."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise _translate(self.path, exc) from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "ResultCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def get_many(self, keys: Iterable[str]) -> dict[str, float | str]:
        """The stored value of each key that has one (a NaN score is stored as NULL and read back as NaN)."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, float | str] = {}
        with self._errors():
            for start in range(0, len(keys), _LOOKUP_BATCH):
                batch = keys[start : start + _LOOKUP_BATCH]
                marks = ",".join("?" * len(batch))
                for key, kind, value in self._db.execute(f"SELECT key, kind, value FROM results WHERE key IN ({marks})", batch):
                    found[key] = math.nan if value is None and kind == "loglikelihood" else value
        return found

    def put_many(self, model_key: str, model: str, kind: str, rows: Sequence[tuple[str, float | str]]) -> None:
        """Store ``(key, value)`` rows in one committed transaction."""
        now = time.time()
        with self._errors():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO results (key, model_key, model, kind, value, created) VALUES (?, ?, ?, ?, ?, ?)",
                    [(k, model_key, model, kind, None if isinstance(v, float) and math.isnan(v) else v, now) for k, v in rows],
                )
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def __len__(self) -> int:
        with self._errors():
            return self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def entries(self) -> list[ModelEntries]:
        """The number of stored rows per model key, largest first."""
        with self._errors():
            rows = self._db.execute(
                "SELECT model_key, MIN(model), SUM(kind = 'loglikelihood'), SUM(kind = 'generate') FROM results"
                " GROUP BY model_key ORDER BY COUNT(*) DESC, MIN(model)"
            ).fetchall()
        return [ModelEntries(k, m, int(ll), int(gen)) for k, m, ll, gen in rows]

    def models(self) -> list[str]:
        with self._errors():
            return [m for (m,) in self._db.execute("SELECT DISTINCT model FROM results ORDER BY model")]

    def clear(self, model: str | None = None, *, glob: bool = False) -> int:
        """Delete every row, or those of one model: ``model`` matched exactly against the model's name as
        audited, or as a prefix of its model key when it is at least 6 hex digits; with ``glob=True``
        a shell-style pattern (``fnmatch``) over the names. Nothing is ever matched as an SQL pattern.
        Returns the number of rows deleted."""
        import fnmatch

        with self._errors():
            names = [m for m in self.models() if fnmatch.fnmatchcase(m, model)] if glob and model is not None else None
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if model is None:
                    n = self._db.execute("DELETE FROM results").rowcount
                elif names is not None:
                    n = sum(self._db.execute("DELETE FROM results WHERE model = ?", (m,)).rowcount for m in names)
                else:
                    is_key_prefix = len(model) >= 6 and all(c in "0123456789abcdef" for c in model)
                    n = self._db.execute(
                        "DELETE FROM results WHERE model = ? OR (? AND substr(model_key, 1, ?) = ?)",
                        (model, is_key_prefix, len(model), model),
                    ).rowcount
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            if model is None:
                self._db.execute("VACUUM")
        return n


def cache_files(path: Path) -> list[Path]:
    """The cache file and its WAL companions, those that exist."""
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]


def remove_cache_files(path: Path) -> list[Path]:
    """Delete the cache file outright (works on a corrupt file too)."""
    removed = []
    for p in cache_files(path):
        try:
            p.unlink()
        except OSError as exc:
            raise AuditError(f"result cache '{p}': cannot delete ({exc.strerror})") from None
        removed.append(p)
    return removed


# --- the cached backend -----------------------------------------------------------------------------------


def _chunks(seq: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


class CachedBackend(WrappingBackend):
    """Any backend, answering from the result cache and sending only the misses, in committed chunks.

    Keyed on the inner backend's ``cache_key()`` (plus ``SCORING_VERSION``). ``hits`` counts requests
    answered from the cache, ``misses`` those that were not, ``scored`` those sent to the model
    (misses without duplicates). With ``BIAS_AUDIT_SCORE_LOG=FILE`` each call to the model appends
    ``kind<TAB>n`` to FILE before it is sent; with ``BIAS_AUDIT_COMMIT_LOG=FILE`` each commit appends
    ``kind<TAB>rows<TAB>unix time``.
    """

    def __init__(self, inner: Backend, cache: ResultCache, chunk_size: int | None = None, generate_chunk_size: int | None = None):
        super().__init__(inner)
        self.cache = cache
        self.chunk_size = chunk_size or _chunk_from_env(DEFAULT_CHUNK)
        self.generate_chunk_size = generate_chunk_size or _chunk_from_env(DEFAULT_GENERATE_CHUNK)
        self.commit_s = _commit_seconds_from_env()
        self.model_key = _sha256_json([inner.cache_key(), SCORING_VERSION])[:32]
        self.model_name = str(inner.identity().get("model") or inner.name)
        self.hits = 0
        self.misses = 0
        self.scored = 0

    def cache_key(self) -> str:
        return self.model_key

    def loglikelihood(self, requests) -> list[float]:
        keys = [request_key(self.model_key, "loglikelihood", r.context, r.continuation) for r in requests]
        if type(self.inner).loglikelihood_progressive is not Backend.loglikelihood_progressive:
            return [float(v) for v in self._answer_progressive(keys, list(requests), "loglikelihood", self.chunk_size,
                                                               self.inner.loglikelihood_progressive)]
        return [float(v) for v in self._answer("loglikelihood", keys, list(requests), self.chunk_size,
                                               self.inner.loglikelihood)]

    def generate(self, prompts: Sequence[str], max_new_tokens: int = 16) -> list[str]:
        keys = [request_key(self.model_key, "generate", p, int(max_new_tokens)) for p in prompts]
        return [str(v) for v in self._answer("generate", keys, list(prompts), self.generate_chunk_size,
                                             lambda chunk: self.inner.generate(chunk, max_new_tokens=max_new_tokens))]

    def generate_until(self, prompts: Sequence[str], max_new_tokens: int, stop: StopRule) -> list[str]:
        target = generation_target(max_new_tokens, stop)
        keys = [request_key(self.model_key, "generate", p, target) for p in prompts]
        if type(self.inner).generate_until_progressive is not Backend.generate_until_progressive:
            # all misses in one call (a decoding batch refilled as rows end), committed as texts are ready
            return [str(v) for v in self._answer_progressive(
                keys, list(prompts), "generate", self.generate_chunk_size,
                lambda todo, on_done: self.inner.generate_until_progressive(todo, max_new_tokens, stop, on_done))]
        return [str(v) for v in self._answer("generate", keys, list(prompts), self.generate_chunk_size,
                                             lambda chunk: self.inner.generate_until(chunk, max_new_tokens, stop))]

    def _pending(self, keys: list[str], requests: list) -> tuple[dict, list]:
        known = self.cache.get_many(keys)
        pending: dict[str, object] = {}  # key -> request, first occurrence, in request order
        for key, request in zip(keys, requests):
            if key in known:
                self.hits += 1
            else:
                self.misses += 1
                pending.setdefault(key, request)
        progress.cached(len(keys) - sum(1 for k in keys if k in pending))
        return known, list(pending.items())

    def _answer_progressive(self, keys: list[str], requests: list, kind: str, chunk_size: int, compute) -> list:
        """All misses in one call (``compute(requests, on_done)``); rows committed as the backend's batches finish,
        every ``commit_s`` seconds or ``chunk_size`` rows, and on any exit (Ctrl-C included) what was scored is
        kept."""
        known, todo = self._pending(keys, requests)
        if not todo:
            return [known[k] for k in keys]
        batch = _Committer(self, kind, chunk_size)
        self._log(kind, len(todo))
        try:
            values = compute(
                [request for _, request in todo],
                lambda indices, out: batch.add([(todo[i][0], out[i]) for i in indices]),
            )
        except BaseException:
            with contextlib.suppress(Exception):
                batch.flush()
            raise
        batch.flush()
        if len(values) != len(todo):
            raise RuntimeError(f"scorer returned {len(values)} results for {len(todo)} requests")
        known.update((key, value) for (key, _), value in zip(todo, values))
        return [known[k] for k in keys]

    def _answer(self, kind: str, keys: list[str], requests: list, chunk_size: int, compute) -> list:
        """Misses in chunks, each committed before the next is sent; a chunk that took longer than
        ``commit_s`` shrinks the next, so commits stay about that far apart."""
        known, todo = self._pending(keys, requests)
        size, start = chunk_size, 0
        while start < len(todo):
            chunk = todo[start : start + size]
            self._log(kind, len(chunk))
            began = time.monotonic()
            values = compute([request for _, request in chunk])
            if len(values) != len(chunk):
                raise RuntimeError(f"scorer returned {len(values)} results for {len(chunk)} requests")
            rows = [(key, value) for (key, _), value in zip(chunk, values)]
            self._commit(kind, rows)
            known.update(rows)
            start += len(chunk)
            took = time.monotonic() - began
            size = max(1, min(chunk_size, int(len(chunk) * self.commit_s / took))) if took > self.commit_s else chunk_size
        return [known[k] for k in keys]

    def _commit(self, kind: str, rows: list) -> None:
        if not rows:
            return
        self.cache.put_many(self.model_key, self.model_name, kind, rows)
        self.scored += len(rows)
        progress.settle(len(rows))
        path = os.environ.get("BIAS_AUDIT_COMMIT_LOG")
        if path and is_main_process():  # under torchrun every rank asks; rank 0 logs once
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(f"{kind}\t{len(rows)}\t{time.time():.3f}\n")

    @staticmethod
    def _log(kind: str, n: int) -> None:
        path = os.environ.get("BIAS_AUDIT_SCORE_LOG")
        if path and is_main_process():  # under torchrun every rank asks; rank 0 logs once
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(f"{kind}\t{n}\n")


class _Committer:
    """Rows scored by a progressive backend, committed every ``commit_s`` seconds or ``max_rows`` rows."""

    def __init__(self, owner: CachedBackend, kind: str, max_rows: int):
        self.owner, self.kind, self.max_rows = owner, kind, max_rows
        self.rows: list = []
        self.last = time.monotonic()

    def add(self, rows: list) -> None:
        self.rows += rows
        if len(self.rows) >= self.max_rows or time.monotonic() - self.last >= self.owner.commit_s:
            self.flush()

    def flush(self) -> None:
        rows, self.rows = self.rows, []
        self.owner._commit(self.kind, rows)
        self.last = time.monotonic()
