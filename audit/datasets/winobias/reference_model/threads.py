"""A reference model's scorer on one CPU thread.

The reference models are two layers, 128 wide: every torch op of a batch is a fraction of a millisecond,
far below the size at which intra-op threads pay for their hand-offs. Measured on the development machine
(2 cores, shared), a paper-b few-shot call of 128 BBQ items took 0.6 CPU-s on one thread and 2.0-3.7 CPU-s
(3.5-13 s wall) on torch's default two (``benchmarks/bench_bbq.py`` measures it). The thread count is
torch's process-wide setting, so it is set around each call and restored after it: a real model audited
side by side keeps its threads. Scores do not change (the same kernels on fewer threads)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

from audit.backends.hf.scorer import Scorer


@contextmanager
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    if before != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if before != 1:
            torch.set_num_threads(before)


class OneThreadScorer(Scorer):
    """``Scorer`` whose log-likelihood and generation calls run on one torch thread."""

    def loglikelihood(self, *args, **kwargs):
        with one_thread():
            return super().loglikelihood(*args, **kwargs)

    def generate(self, *args, **kwargs):
        with one_thread():
            return super().generate(*args, **kwargs)
