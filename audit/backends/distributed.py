"""Data-parallel scoring under ``torchrun`` / ``accelerate launch``: one copy of the model per process
(rank), each scoring its share of every request list, the answers gathered so that every rank holds
the full, ordered answer, identical to what one process computes.

    torchrun --nproc-per-node 2 -m audit.cli run --model DIR ...

How it stays identical to a single process. Every rank runs the whole audit (pytest, the session,
the gates) on the same config, data and seeds, so every rank makes the same backend calls in the same
order. The HF engine plans each call exactly as one process would (tokenisation, shared prefixes,
length-sorted batches) and rank r runs batches r, r + N, r + 2N...; ``all_gather_object`` brings every
rank the answers of the others. Each batch is the single-process batch, so every score is the same to
the last bit (a request's score moves by about 1e-7 when other requests share its padded batch, so
a split by requests would not be). Backends without that hook (``loglikelihood_shard``) get contiguous
shares of each call, equal up to that rounding. An out-of-memory retry with smaller batches (batch
size ``auto`` on a GPU) changes batches, so only runs without one are bit-identical.

The result cache. Only rank 0 opens the SQLite file; it alone reads and writes it. If every rank read
the cache itself, a rank could see rows that rank 0 had just committed while another had not: the
ranks would disagree on which requests still need scoring and hang in mismatched collectives. So
``RankZeroCache`` makes each lookup a collective: rank 0 reads, broadcasts what it found, and every rank
computes the same list of misses; writes happen on rank 0 only. The wrapped ``CachedBackend`` is the
ordinary one.

Only rank 0 writes results.json, the report and the throughput record, and prints pytest's output
(the plugin silences the terminal of the other ranks). The process group comes from the environment
torchrun sets (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``): NCCL when CUDA
is present (rank r uses ``cuda:LOCAL_RANK``), gloo on CPU.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from dataclasses import dataclass
from typing import Iterator, Sequence

from audit.prompts.stopping import StopRule
from audit.backends.base import Backend, Request, WrappingBackend
from audit.errors import AuditError


@dataclass(frozen=True)
class World:
    """This process's place in a torchrun job (size 1, rank 0: a plain single process)."""

    size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, n: int, rank: int | None = None) -> slice:
        """The contiguous slice of ``n`` requests that ``rank`` scores (sizes differ by at most one)."""
        r = self.rank if rank is None else rank
        base, extra = divmod(n, self.size)
        start = r * base + min(r, extra)
        return slice(start, start + base + (1 if r < extra else 0))


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise AuditError(f"environment variable {name}='{raw}' is not a whole number (set by torchrun)") from None


def world_from_env() -> World:
    """WORLD_SIZE / RANK / LOCAL_RANK as torchrun and accelerate launch set them; absent: a single process."""
    size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    if size < 1 or not 0 <= rank < size:
        raise AuditError(f"RANK={rank} / WORLD_SIZE={size}: not a valid torchrun rank")
    return World(size=size, rank=rank, local_rank=_env_int("LOCAL_RANK", rank))


def is_main_process() -> bool:
    """False on ranks other than 0 of a torchrun job: they compute but write nothing."""
    return world_from_env().is_main


def init_distributed() -> World:
    """Join the torchrun process group (once); a single process needs none."""
    world = world_from_env()
    if not world.distributed:
        return world
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        if not os.environ.get("MASTER_ADDR"):
            raise AuditError("WORLD_SIZE > 1 but MASTER_ADDR is not set: start data-parallel runs with torchrun "
                             "(torchrun --nproc-per-node N -m audit.cli run ...)")
        if torch.cuda.is_available():
            torch.cuda.set_device(world.local_rank % torch.cuda.device_count())
            dist.init_process_group("nccl")
        else:
            dist.init_process_group("gloo")
        atexit.register(_destroy)
    return world


def _destroy() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        with contextlib.suppress(Exception):
            dist.destroy_process_group()


def rank_device(world: World, requested: str | None) -> str | None:
    """Rank r of a job on GPUs uses ``cuda:LOCAL_RANK`` unless the user chose a device."""
    if requested or not world.distributed:
        return requested
    import torch

    return f"cuda:{world.local_rank % torch.cuda.device_count()}" if torch.cuda.is_available() else None


def _all_gather(value) -> list:
    import torch.distributed as dist

    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


class _Failed:
    """What a rank contributes to a collective when its own share failed: the error, to be raised on every rank."""

    def __init__(self, exc: BaseException, rank: int):
        self.kind = type(exc) if isinstance(exc, AuditError) else AuditError
        text = str(exc).strip().splitlines()
        self.message = text[0] if text else type(exc).__name__
        if not isinstance(exc, AuditError):
            self.message = f"rank {rank}: {type(exc).__name__}: {self.message}"


def _gather_or_fail(compute, rank: int) -> list:
    """Every rank's result of ``compute()``; when any rank's failed, every rank raises the first failure's one
    line at the same collective (no rank is left waiting for a rank that will never come)."""
    try:
        mine = list(compute())
    except Exception as exc:  # noqa: BLE001 - shared with the other ranks, then raised on each
        mine = _Failed(exc, rank)
    parts = _all_gather(mine)
    failed = next((p for p in parts if isinstance(p, _Failed)), None)
    if failed is not None:
        try:
            error = failed.kind(failed.message)
        except Exception:  # noqa: BLE001 - an error class that takes other arguments
            error = AuditError(failed.message)
        raise error
    return parts


def _broadcast_from_main(value):
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


@contextlib.contextmanager
def agree_on_errors(world: World) -> Iterator[None]:
    """Run a setup step on every rank; if it fails on any rank (e.g. only rank 0 opens the cache file),
    every rank raises the same one-line error instead of the others waiting in a collective forever."""
    if not world.distributed:
        yield
        return
    error: AuditError | None = None
    try:
        yield
    except AuditError as exc:
        error = exc
    errors = _all_gather(None if error is None else (type(error), str(error)))
    first = next((e for e in errors if e is not None), None)
    if first is not None:
        kind, message = first
        raise kind(message)


@contextlib.contextmanager
def after_rank_zero() -> Iterator[None]:
    """Every rank leaves the block only once rank 0 has (e.g. written results.json): torchrun stops the whole
    job when any rank exits with an error, so no rank may exit before rank 0's work is on disk."""
    try:
        yield
    finally:
        import torch.distributed as dist

        if world_from_env().distributed and dist.is_available() and dist.is_initialized():
            dist.barrier()


class DistributedBackend(WrappingBackend):
    """Any backend, its work split across the ranks of a torchrun job; every rank gets the full answer."""

    def __init__(self, inner: Backend, world: World):
        super().__init__(inner)
        self.world = world

    def _sharded(self, items: list, compute) -> list:
        """Contiguous shares, for backends that cannot split their own batching."""
        from audit.run import progress

        share = items[self.world.share(len(items))]
        # Rank 0 shows the progress of the whole job: its share stands for every rank's equal share.
        def mine() -> list:
            with progress.scaled(len(items) / len(share) if share else 1.0):
                got = list(compute(share)) if share else []
            if len(got) != len(share):
                raise RuntimeError(f"backend returned {len(got)} results for {len(share)} requests")
            return got

        out = [value for part in _gather_or_fail(mine, self.world.rank) for value in part]
        if len(out) != len(items):
            raise RuntimeError(f"ranks returned {len(out)} results for {len(items)} requests")
        return out

    def _by_batches(self, n: int, compute) -> list:
        """The backend runs every size-th batch of its single-process batching; entries of other ranks' batches
        are None. Merged, each entry comes from exactly one rank."""
        from audit.run import progress

        def mine() -> list:
            with progress.scaled(float(self.world.size)):
                return list(compute(self.world.rank, self.world.size))

        parts = _gather_or_fail(mine, self.world.rank)
        out = []
        for i in range(n):
            found = [part[i] for part in parts if part[i] is not None]
            if len(found) != 1:
                raise RuntimeError(f"request {i} was answered by {len(found)} ranks, expected exactly one")
            out.append(found[0])
        return out

    def loglikelihood(self, requests: Sequence[Request]) -> list[float]:
        requests = list(requests)
        if hasattr(self.inner, "loglikelihood_shard"):
            return self._by_batches(len(requests), lambda rank, size: self.inner.loglikelihood_shard(requests, rank, size))
        return self._sharded(requests, self.inner.loglikelihood)

    def generate(self, prompts: Sequence[str], max_new_tokens: int = 16) -> list[str]:
        prompts = list(prompts)
        if hasattr(self.inner, "generate_shard"):
            return self._by_batches(len(prompts),
                                    lambda rank, size: self.inner.generate_shard(prompts, max_new_tokens, rank, size))
        return self._sharded(prompts, lambda share: self.inner.generate(share, max_new_tokens=max_new_tokens))

    def generate_until(self, prompts: Sequence[str], max_new_tokens: int, stop: StopRule) -> list[str]:
        prompts = list(prompts)
        if hasattr(self.inner, "generate_shard"):
            return self._by_batches(len(prompts), lambda rank, size: self.inner.generate_shard(
                prompts, max_new_tokens, rank, size, stop=stop))
        return self._sharded(prompts, lambda share: self.inner.generate_until(share, max_new_tokens, stop))



class RankZeroCache:
    """The result cache of a torchrun job: rank 0 holds the real ``ResultCache``; every lookup is a collective
    (rank 0 reads, every rank receives the same answer); writes happen on rank 0 alone."""

    def __init__(self, cache, world: World):
        if world.is_main and cache is None:
            raise ValueError("rank 0 needs the result cache it shares")
        self.cache = cache if world.is_main else None
        self.world = world
        self.path = getattr(cache, "path", None)

    def get_many(self, keys) -> dict:
        found = self.cache.get_many(keys) if self.world.is_main else None
        return _broadcast_from_main(found)

    def put_many(self, model_key: str, model: str, kind: str, rows) -> None:
        if self.world.is_main:
            self.cache.put_many(model_key, model, kind, rows)

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()

    def __getattr__(self, name):  # anything else (entries, clear...) is rank 0's business
        if self.cache is None:
            raise AttributeError(f"the result cache is rank 0's; rank {self.world.rank} has no '{name}'")
        return getattr(self.cache, name)
