"""Render a BBQ item in a prompt format (Jinja2 files ``templates/prompts/bbq_*.j2``).

A rendered prompt is a ``(prefix, query)`` pair, ``prefix`` being the part shared by every item of
a condition (pre-prompt, instruction, shots), plus the three continuations to score by
log-likelihood, ``" " + answer``, in the item's *own* answer order (index i scores answer i), so
a selection is ``argmax`` over them whatever order the prompt lists the options in.

``rotation`` k lists the options cyclically rotated by k (option j shows answer ``(j + k) % 3``):
option position is a known cue, so a caller can average the three rotations.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import jinja2

from audit.errors import ConfigError
from audit.prompts.render import load_template

from .items import BBQItem

PROMPT_FORMATS = ("bbq_intrinsic", "bbq_zero_shot", "bbq_chain_of_thought", "bbq_explain")
SPLIT_MARK = "\x00<query>\x00"
LETTERS = ("a", "b", "c")


@dataclass(frozen=True)
class BBQPrompt:
    prefix: str
    query: str
    continuations: tuple[str, str, str]  # " " + answer i, in the item's answer order
    order: tuple[int, int, int]  # order[j] = the answer index listed as option j

    @property
    def text(self) -> str:
        return self.prefix + self.query


def option_order(rotation: int) -> tuple[int, int, int]:
    """Answer indices in the order a prompt lists them, for cyclic rotation ``rotation``."""
    return tuple((j + rotation) % 3 for j in range(3))  # type: ignore[return-value]


@functools.lru_cache(maxsize=None)
def _template(name: str) -> jinja2.Template:
    return load_template(name, lambda: PROMPT_FORMATS, "BBQ prompt format")


def _view(item: BBQItem, order: Sequence[int]) -> dict:
    return {
        "context": item.context, "question": item.question, "answer": item.answers[item.label],
        "options": [(LETTERS[j], item.answers[i]) for j, i in enumerate(order)],
    }


def render_bbq(fmt: str, item: BBQItem, shots: Sequence[BBQItem] = (), preprompt: str = "",
               rotation: int = 0) -> BBQPrompt:
    """Render ``item`` in format ``fmt`` (see :data:`PROMPT_FORMATS`); shots are shown solved."""
    order = option_order(rotation)
    text = _template(fmt).render(item=_view(item, order), shots=[_view(s, order) for s in shots],
                                 preprompt=preprompt, split=SPLIT_MARK)
    if text.count(SPLIT_MARK) != 1:
        raise ConfigError(f"BBQ prompt format '{fmt}' must write {{{{ split }}}} exactly once")
    prefix, query = text.split(SPLIT_MARK)
    continuations = tuple(" " + answer for answer in item.answers)
    return BBQPrompt(prefix, query.rstrip(" "), continuations, order)  # type: ignore[arg-type]
