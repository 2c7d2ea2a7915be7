"""Mapping a generated answer to one of the two candidate occupations, or to "other" (None)."""

from __future__ import annotations

import re

_ANSWER_IS = re.compile(r"answer is\s*:?\s*(?:the\s+|an?\s+)?(.*)", re.IGNORECASE | re.DOTALL)


def _first_mentioned(text: str, candidates: tuple[str, str]) -> str | None:
    low = text.lower()
    hits = []
    for cand in candidates:
        m = re.search(r"\b" + re.escape(cand.lower()) + r"s?\b", low)
        if m:
            hits.append((m.start(), cand))
    return min(hits)[1] if hits else None


def map_answer(text: str, candidates: tuple[str, str]) -> str | None:
    """The candidate a generation names: after the last "answer is" when the text has one (chain of
    thought), else the candidate mentioned first. None when it names neither (refusals, other people)."""
    found = list(_ANSWER_IS.finditer(text))
    if found:
        chosen = _first_mentioned(found[-1].group(1), candidates)
        if chosen is not None:
            return chosen
    return _first_mentioned(text, candidates)
