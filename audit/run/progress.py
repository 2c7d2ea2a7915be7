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
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol

REFRESH_S = 0.25  # at most this often a line is redrawn (the first and last updates always are)


class Display(Protocol):
    def show(self, text: str, final: bool) -> None:
        """Draw ``text`` over the current progress line; ``final``: keep it and move to a new line."""

    @property
    def width(self) -> int:
        """The columns a line may take."""


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

    def line(self, width: int | None = None) -> str:
        """The progress line, at most ``width`` columns: the less useful parts (cached count, speed, then
        the model and condition) give way first, so the counts, ETA and elapsed time stay visible."""
        rate = self.tokens_per_s()
        rate_text = f"{rate:,.0f} tok/s" if rate is not None else "- tok/s"
        head = f"{self.model} · {self.condition}"
        cached = f" ({self.cached_requests:,} cached)"
        if self.finished is not None:
            count, timing = f"{self.total:,} requests", f"in {format_duration(self.seconds)}"
            parts = [(head, 3), (f"{count}{cached}", 0), (timing, 0), (rate_text, 2)]
        else:
            eta = self.eta_s()
            count = f"{self.done:,}/{self.total:,} requests"
            timing = f"elapsed {format_duration(self.seconds)}  ETA {format_duration(eta) if eta is not None else '?'}"
            parts = [(head, 3), (f"{count}{cached}", 0), (rate_text, 2), (timing, 0)]
        return fit_line(parts, width, shorten=(f"{count}{cached}", count))


def fit_line(parts: list[tuple[str, int]], width: int | None, shorten: tuple[str, str] = ("", "")) -> str:
    """Join ``parts`` (text, how readily it is dropped: 0 never) with two spaces into ``width`` columns:
    first ``shorten`` is applied, then droppable parts go (highest first), then the first part is cut."""
    def join(ps: list[tuple[str, int]]) -> str:
        return "  ".join(text for text, _ in ps)

    line = join(parts)
    if width is None or len(line) <= width:
        return line
    parts = [(shorten[1] if text == shorten[0] and shorten[0] else text, rank) for text, rank in parts]
    for rank in (1, 2):
        if len(join(parts)) <= width:
            break
        parts = [(t, r) for t, r in parts if r != rank]
    line = join(parts)
    if len(line) <= width:
        return line
    head, rest = parts[0][0], join(parts[1:])
    room = width - len(rest) - 2
    if room >= 8:  # the model · condition, cut with an ellipsis
        return f"{head[: room - 1]}…  {rest}" if len(head) > room else f"{head}  {rest}"
    return join([p for p in parts if p[1] == 0])[:width]


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


_display: Display | None = None
_stage_sink: Callable[[str], None] | None = None
_tasks: list[Task] = []
_scale = [1.0]


def set_display(display: Display | None) -> None:
    """Where progress is shown (None: nowhere)."""
    global _display
    _display = display


def set_stage_sink(sink: Callable[[str], None] | None) -> Callable[[str], None] | None:
    """Where stage lines go when no display is set (the CLI: standard error, before pytest starts); returns
    the previous sink."""
    global _stage_sink
    previous, _stage_sink = _stage_sink, sink
    return previous


def stage(text: str) -> None:
    """A stage of the run begins (building reference models, loading, tokenising, scoring, resampling):
    one line that stays, on a terminal and in logs alike, so no stage is silent."""
    from audit.results.redaction import redact

    text = redact(text)
    try:
        if _display is not None:
            _display.show(text, True)
        elif _stage_sink is not None:
            _stage_sink(text)
    except (OSError, ValueError):  # a closed terminal must not stop the audit
        pass


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
        _display.show(task.line(getattr(_display, "width", None)), final)
    except (OSError, ValueError):  # a closed terminal must not stop the audit
        pass


HEARTBEAT_S = 8.0  # a long stage without progress of its own says it is still going this often


@contextlib.contextmanager
def activity(text: str) -> Iterator[None]:
    """A stage that reports no progress of its own (building reference models, loading weights,
    resampling): its line now, then "still ..." every ``HEARTBEAT_S`` seconds until it ends."""
    stage(text)
    started, done = time.perf_counter(), threading.Event()

    def beat() -> None:
        while not done.wait(HEARTBEAT_S):
            if not _tasks:  # a task inside draws its own progress
                stage(f"still {text} ({format_duration(time.perf_counter() - started)} so far)")

    thread = threading.Thread(target=beat, name="bias-audit-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


@contextlib.contextmanager
def task(model: str, condition: str, total: int) -> Iterator[Task]:
    """Measure ``total`` requests of one model and condition; the final line is drawn on exit."""
    t = Task(model, condition, total)
    stage(f"scoring {model} · {condition}: {total:,} requests (tokenising, then the model)")
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
