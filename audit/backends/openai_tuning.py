"""How the completions backend drives a server at its throughput, chosen from the server's own answers.

- **Prompt caching.** llama.cpp's ``llama-server`` (recognised by its ``/props`` page) keeps a
  prompt's key/value cache for the next request only when asked (``cache_prompt``), so every
  request asks. Other servers cache without being asked (vLLM's prefix cache,
  llama-cpp-python's reuse of the previous prompt's longest common prefix); for all of them the
  backend sends requests that share a prefix one after another (``prefix_order``).
- **Requests in flight.** llama-server says how many sequences it runs at once (``total_slots``).
  Any other server is measured: the start-up probe sends the same short scoring requests with 1,
  2, 4, ... in flight and doubles while the rate still rises by ``GAIN``. At least ``FLOOR`` stay
  in flight, so the server has the next request while we read the last answer. A concurrency the
  user sets is used as given.
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable, Sequence

GAIN = 1.15  # a doubling must raise the measured rate by 15% to be worth its queueing (timing noise is ~5%)
LEVELS = (1, 2, 4, 8, 16, 32)  # requests in flight tried, in order
ROUNDS = 2  # requests per slot at each level (the rate of one request alone is mostly its latency)
FLOOR = 2


def llama_cpp_slots(props: dict | None) -> int | None:
    """llama-server's parallel sequences from its ``/props`` page; None where the page is not llama.cpp's."""
    if not isinstance(props, dict) or not isinstance(props.get("default_generation_settings"), dict):
        return None
    slots = props.get("total_slots")
    if isinstance(slots, int) and not isinstance(slots, bool) and slots >= 1:
        return slots
    return None


async def rates_in_flight(send: Callable[[int], Awaitable[object]], levels: Sequence[int] = LEVELS,
                          rounds: int = ROUNDS, gain: float = GAIN,
                          clock: Callable[[], float] = time.perf_counter) -> list[tuple[int, float]]:
    """Requests per second with ``c`` requests in flight, for ``c`` in ``levels`` until a doubling stops paying.

    ``send(i)`` sends the i-th request of a level (the caller varies the prompt with ``i``)."""
    table: list[tuple[int, float]] = []
    for c in levels:
        gate = asyncio.Semaphore(c)

        async def one(i: int) -> None:
            async with gate:
                await send(i)

        start = clock()
        await asyncio.gather(*(one(i) for i in range(c * rounds)))
        table.append((c, c * rounds / max(clock() - start, 1e-9)))
        if len(table) >= 2 and table[-1][1] < gain * table[-2][1]:
            break
    return table


def choose_concurrency(table: Sequence[tuple[int, float]], gain: float = GAIN, floor: int = FLOOR) -> int:
    """The last level reached by doublings that each raised the rate by ``gain``; at least ``floor``."""
    chosen = table[0][0] if table else floor
    for (_, before), (c, after) in zip(table, table[1:]):
        if after < gain * before:
            break
        chosen = c
    return max(floor, chosen)


def prefix_order(jobs: Sequence[tuple]) -> list[tuple]:
    """Jobs ``(context ids, continuation ids, text)`` in token order: requests sharing a prefix become neighbours,
    so a server that keeps the last prompt's key/value cache computes each shared prefix once."""
    return sorted(jobs, key=lambda job: (tuple(job[0]) + tuple(job[1]), job[2]))
