"""The BBQ items loaded in this process, found again from a rendered prompt's text.

Used by the planted-rule reference backend (``audit.datasets.bbq.reference_model``), which, like a reader,
sees only the prompt: it finds the item whose context and question end the prompt's last question.
"""

from __future__ import annotations

from typing import Iterable

from .items import BBQItem

_BY_QUESTION: dict[str, dict[str, BBQItem]] = {}


def remember(items: Iterable[BBQItem]) -> None:
    for item in items:
        _BY_QUESTION.setdefault(item.question.strip(), {})[item.context.strip()] = item


def lookup(question: str, text_before: str) -> BBQItem | None:
    """The item asking ``question`` whose context is what ``text_before`` ends with (longest match)."""
    contexts = _BY_QUESTION.get(question.strip(), {})
    before = text_before.rstrip()
    for mark in ("Context: ", "\n\n", "\n"):  # the usual places a context starts: direct look-ups first
        if mark in before and before.rsplit(mark, 1)[1].strip() in contexts:
            return contexts[before.rsplit(mark, 1)[1].strip()]
    if before.strip() in contexts:
        return contexts[before.strip()]
    found = None
    for context, item in contexts.items():
        if before.endswith(context) and (found is None or len(context) > len(found.context)):
            found = item
    return found
