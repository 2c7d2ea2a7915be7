"""What a condition cost (``results.json``: each condition's ``cost``, see docs/results-schema.md).

``CostMeter`` wraps the backend a condition runs on and notes the requests it is asked; the token
positions the model actually ran come from the condition's progress task (``audit.run.progress``: the
engine reports them per batch). Identical requests across conditions and seeds are answered once per run
by the result cache (on disk, or in memory with the cache off), so their second asking counts as reused.
"""

from __future__ import annotations

import time
from typing import Sequence

from audit.backends.base import Request, WrappingBackend
from audit.errors import AuditError
from audit.prompts.stopping import StopRule
from audit.run import progress


_COUNT_CHUNK = 4096  # texts tokenised at a time for counting (bounds the token lists held)


class CostMeter(WrappingBackend):
    """Counts as requests pass and keeps no text: a request's prompt tokens are its shared prefix's (tokenised
    once per prefix) plus its own text's (query and continuation), so memory does not grow with the run
    (within a token per request of tokenising the whole text: a merge across the prefix boundary)."""

    def __init__(self, inner):
        super().__init__(inner)
        self.prompt_tokens: int | None = 0  # None once the backend cannot count tokens
        self._prefix_tokens: dict[str, int] = {}
        self.requests = 0
        task = progress.current()
        self._task = task
        self._tokens0 = task.tokens if task else 0.0
        self._cached0 = task.cached_requests if task else 0
        self._wall0, self._cpu0 = time.perf_counter(), time.process_time()

    def loglikelihood(self, requests: Sequence[Request]) -> list[float]:
        self._count([r.prefix for r in requests], [r.query + r.continuation for r in requests])
        self.requests += len(requests)
        return self.inner.loglikelihood(requests)

    def generate(self, prompts: Sequence[str], max_new_tokens: int = 16) -> list[str]:
        self._count([""] * len(prompts), list(prompts))
        self.requests += len(prompts)
        return self.inner.generate(prompts, max_new_tokens=max_new_tokens)

    def generate_until(self, prompts: Sequence[str], max_new_tokens: int, stop: StopRule) -> list[str]:
        self._count([""] * len(prompts), list(prompts))
        self.requests += len(prompts)
        return self.inner.generate_until(prompts, max_new_tokens, stop)

    def _count(self, prefixes: list[str], owns: list[str]) -> None:
        if self.prompt_tokens is None:
            return
        try:
            new = [p for p in dict.fromkeys(prefixes) if p and p not in self._prefix_tokens]
            self._prefix_tokens.update(zip(new, self.inner.count_tokens(new) if new else []))
            total = sum(self._prefix_tokens[p] for p in prefixes if p)
            for start in range(0, len(owns), _COUNT_CHUNK):
                total += int(sum(self.inner.count_tokens(owns[start : start + _COUNT_CHUNK])))
            self.prompt_tokens += total
        except (AuditError, NotImplementedError, OSError):
            self.prompt_tokens = None

    def cost(self) -> dict:
        """requests, requests_reused, prompt_tokens, tokens_computed, tokens_saved_by_reuse, cpu_s, wall_s,
        peak_rss_mb (None where the backend cannot count tokens or no progress task measured the engine)."""
        wall, cpu = time.perf_counter() - self._wall0, time.process_time() - self._cpu0
        prompt_tokens = self.prompt_tokens
        task = self._task
        computed = int(task.tokens - self._tokens0) if task is not None else None
        reused = int(task.cached_requests - self._cached0) if task is not None else None
        saved = max(prompt_tokens - computed, 0) if prompt_tokens is not None and computed is not None else None
        return {"requests": self.requests, "requests_reused": reused, "prompt_tokens": prompt_tokens,
                "tokens_computed": computed, "tokens_saved_by_reuse": saved,
                "cpu_s": round(cpu, 3), "wall_s": round(wall, 3), "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float | None:
    """This process's resident-memory high-water mark so far in MB (Linux ``VmHWM``; None elsewhere). Read at
    the end of each condition it only grows, so the condition where it rises is the one that set the peak."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None
