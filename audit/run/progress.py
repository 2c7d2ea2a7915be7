"""Progress of long runs: requests done of total, tokens per second and ETA, per model and condition.

The session opens a ``task`` for each model and condition it measures; the backends report into the
current task (``advance`` from the scoring engine per batch, ``cached`` and ``settle`` from the result
cache); a ``Display`` shows it. Nothing is shown unless a display is set: the pytest plugin sets one
that writes to the terminal past pytest's output capture, only when that terminal is a TTY and only
on rank 0 of a torchrun job. So ``bias-audit run`` and plain ``pytest --audit-model`` show the same
lines, and logs and CI output stay clean.

    reference-fair · zero_shot  812/1,280 requests (0 cached)  3,410 tok/s  ETA 0:00:07
    reference-fair · zero_shot  1,280 requests (0 cached) in 0:00:19, 3,390 tok/s

A task's timing (requests the model scored, token positions it ran, seconds) is also what
``audit.run.throughput`` stores for ``bias-audit plan``'s time estimates.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Iterator, Protocol

REFRESH_S = 0.25  # at most this often a line is redrawn (the first and last updates always are)


class Display(Protocol):
    def show(self, text: str, final: bool) -> None:
        """Draw ``text`` over the current progress line; ``final``: keep it and move to a new line."""


@dataclass
class Task:
    model: str
    condition: str
    total: int
    cached_requests: int = 0  # answered from the result cache
    settled: int = 0  # scored requests that the cache layer saw complete (exact, per committed chunk)
    engine: float = 0.0  # scored requests the engine reported (per batch; scaled to the whole job under torchrun)
    tokens: float = 0.0  # token positions the model ran
    started: float = field(default_factory=time.perf_counter)
    finished: float | None = None
    _drawn: float = 0.0

    @property
    def scored(self) -> int:
        return int(min(max(self.engine, self.settled), self.total - self.cached_requests))

    @property
    def done(self) -> int:
        return min(self.total, self.cached_requests + self.scored)

    @property
    def seconds(self) -> float:
        return (self.finished or time.perf_counter()) - self.started

    def tokens_per_s(self) -> float | None:
        return self.tokens / self.seconds if self.tokens and self.seconds > 0 else None

    def eta_s(self) -> float | None:
        if not self.scored or self.seconds <= 0:
            return None
        return (self.total - self.done) / (self.scored / self.seconds)

    def line(self) -> str:
        rate = self.tokens_per_s()
        rate_text = f"{rate:,.0f} tok/s" if rate is not None else "- tok/s"
        head = f"{self.model} · {self.condition}"
        if self.finished is not None:
            return (f"{head}  {self.total:,} requests ({self.cached_requests:,} cached) in "
                    f"{format_duration(self.seconds)}, {rate_text}")
        eta = self.eta_s()
        return (f"{head}  {self.done:,}/{self.total:,} requests ({self.cached_requests:,} cached)  {rate_text}  "
                f"ETA {format_duration(eta) if eta is not None else '?'}")


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


_display: Display | None = None
_tasks: list[Task] = []
_scale = [1.0]


def set_display(display: Display | None) -> None:
    """Where progress is shown (None: nowhere)."""
    global _display
    _display = display


def current() -> Task | None:
    return _tasks[-1] if _tasks else None


def _draw(task: Task, final: bool = False) -> None:
    if _display is None:
        return
    now = time.perf_counter()
    if not final and task._drawn and now - task._drawn < REFRESH_S:
        return
    task._drawn = now
    try:
        _display.show(task.line(), final)
    except (OSError, ValueError):  # a closed terminal must not stop the audit
        pass


@contextlib.contextmanager
def task(model: str, condition: str, total: int) -> Iterator[Task]:
    """Measure ``total`` requests of one model and condition; the final line is drawn on exit."""
    t = Task(model, condition, total)
    _tasks.append(t)
    try:
        yield t
    finally:
        _tasks.remove(t)
        t.finished = time.perf_counter()
        if t.done or t.total:
            _draw(t, final=True)


@contextlib.contextmanager
def scaled(factor: float) -> Iterator[None]:
    """Engine reports inside this block count ``factor`` times (rank 0 of a torchrun job speaks for all)."""
    _scale.append(factor)
    try:
        yield
    finally:
        _scale.pop()


def advance(requests: int, tokens: int = 0) -> None:
    """The engine scored ``requests`` more requests, running ``tokens`` token positions."""
    t = current()
    if t is None:
        return
    t.engine += requests * _scale[-1]
    t.tokens += tokens * _scale[-1]
    _draw(t)


def cached(requests: int) -> None:
    """``requests`` were answered from the result cache."""
    t = current()
    if t is not None and requests:
        t.cached_requests += requests
        _draw(t)


def settle(requests: int) -> None:
    """``requests`` more were scored and stored (exact counts, whatever the engine reported)."""
    t = current()
    if t is not None:
        t.settled += requests
        _draw(t)
