"""Planning a condition's forward passes (pure): the shared prefix computed once, contexts grouped into
rows with their continuations, and the tree attention mask that keeps each continuation independent."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import torch

BOUNDARY_SLACK = 8  # prefix tokens a BPE merge at the prefix/query boundary may cost before we fall back


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def plan_shared_prefix(
    prefix_ids: Sequence[int], contexts: Sequence[Sequence[int]], slack: int = BOUNDARY_SLACK
) -> tuple[int, list[bool]]:
    """How many prefix tokens to compute once for these contexts, and which contexts may use them.

    A context may use the cached tokens only if they are exactly its own first tokens; each keeps
    at least one token of its own (the one whose logits score the first continuation token). The
    shared length is the shortest such agreement among the contexts that agree with all but the
    last ``slack`` prefix tokens (the others, ``False``, are scored without the cache), extended
    over any further tokens that all of those contexts have in common.
    """
    if not prefix_ids:
        return 0, [False] * len(contexts)
    agree = [min(common_prefix_len(prefix_ids, c), len(c) - 1) for c in contexts]
    floor = max(1, len(prefix_ids) - slack)
    usable = [a >= floor for a in agree]
    if not any(usable):
        return 0, usable
    shared = min(a for a, u in zip(agree, usable) if u)
    # the contexts may agree beyond the prefix string (e.g. every query opens with "Sentence: The")
    mine = [c for c, u in zip(contexts, usable) if u]
    limit = min(len(c) for c in mine) - 1
    while shared < limit and all(c[shared] == mine[0][shared] for c in mine):
        shared += 1
    return shared, usable


@dataclass
class _Unit:
    """One batch row: a context and the distinct continuations scored after it."""

    ctx: tuple[int, ...]
    conts: list[tuple[int, ...]] = field(default_factory=list)
    owners: list[list[int]] = field(default_factory=list)  # request indices of each continuation

    def width(self, shared: int) -> int:
        return len(self.ctx) - shared + sum(max(len(c) - 1, 0) for c in self.conts)


def _units(indices: Iterable[int], tokens: Sequence[tuple[list[int], list[int]]]) -> list[_Unit]:
    by_ctx: dict[tuple[int, ...], _Unit] = {}
    for i in indices:
        ctx, cont = tuple(tokens[i][0]), tuple(tokens[i][1])
        unit = by_ctx.setdefault(ctx, _Unit(ctx))
        if cont in unit.conts:
            unit.owners[unit.conts.index(cont)].append(i)
        else:
            unit.conts.append(cont)
            unit.owners.append([i])
    return list(by_ctx.values())


def _rows_needed(widths: Sequence[int], pack_tokens: int) -> int:
    """Rows for contexts of these widths: enough for ``pack_tokens`` each, at most one per context."""
    return max(1, min(len(widths), -(-sum(widths) // max(1, pack_tokens))))


def padded_tokens(widths: Sequence[int], pack_tokens: int) -> int:
    """Token positions of one packed pass of contexts of these widths (``assign_rows``): rows x the fullest row's
    tokens, padding included. A pass's activations and attention scale with it."""
    n_rows, placed = assign_rows(widths, pack_tokens)
    filled = [0] * n_rows
    for i, r in placed:
        filled[r] += widths[i]
    return n_rows * max(filled)


def tree_mask(units: torch.Tensor, branches: torch.Tensor, shared: int) -> torch.Tensor:
    """Boolean attention mask ``[rows, 1, width, shared + width]`` (True = may attend).

    A row packs several contexts one after another: ``units[r, i]`` numbers the context a token
    belongs to (-1 for padding), ``branches[r, i]`` is 0 for a query token and ``j + 1`` for a
    token of continuation ``j``. A real token sees the shared prefix, the earlier query tokens of
    its own context and the earlier tokens of its own continuation; a padding token sees only
    itself (a query row with no key at all is NaN in SDPA).
    """
    rows, width = units.shape
    pos = torch.arange(width, device=units.device)
    causal = (pos[:, None] >= pos[None, :])[None]
    real_q = (units >= 0)[:, :, None]
    same_unit = units[:, :, None] == units[:, None, :]
    br_q, br_k = branches[:, :, None], branches[:, None, :]
    own = causal & real_q & same_unit & ((br_k == 0) | (br_k == br_q))
    own = own | torch.eye(width, dtype=torch.bool, device=units.device)[None]
    pre = real_q.expand(rows, width, shared)
    return torch.cat([pre, own], dim=-1)[:, None]


def assign_rows(widths: Sequence[int], pack_tokens: int) -> tuple[int, list[tuple[int, int]]]:
    """Pack contexts of these widths into ``_rows_needed`` rows, longest first onto the shortest row:
    the number of rows and the placements ``(context index, row)`` in the order to lay them out."""
    n_rows = _rows_needed(widths, pack_tokens)
    filled = [0] * n_rows
    placed = []
    for i in sorted(range(len(widths)), key=lambda i: -widths[i]):
        r = min(range(n_rows), key=lambda k: (filled[k], k))
        filled[r] += widths[i]
        placed.append((i, r))
    return n_rows, placed


def prompt_groups(rests: Sequence[Sequence[int]], share: bool, max_width: int) -> list[tuple[int, list[int]]]:
    """Generation prompts (their tokens after the call's common prefix) grouped for one packed prompt pass:
    ``(shared, members)``, the members' first ``shared`` tokens equal and computed once for the group.

    Prompts are taken in token order, so that prompts with a common opening are neighbours; a prompt joins
    the previous group when the tokens the group then saves (``shared`` x (members - 1)) do not fall and
    the group stays within ``max_width`` tokens. Each member keeps at least one token of its own (its last,
    whose logits give the first new token). ``share=False``: every prompt alone.
    """
    groups: list[tuple[int, list[int]]] = []
    for i in sorted(range(len(rests)), key=lambda i: (tuple(rests[i]), i)):
        own = len(rests[i]) - 1
        if share and groups:
            shared, members = groups[-1]
            joined = min(shared, common_prefix_len(rests[members[0]], rests[i]), own)
            width = joined + sum(len(rests[j]) - joined for j in members) + len(rests[i]) - joined
            if joined > 0 and joined * len(members) >= shared * (len(members) - 1) and width <= max_width:
                groups[-1] = (joined, members + [i])
                continue
        groups.append((own, [i]))
    return groups
