"""Where a generation stops: each prompt format's answer ends somewhere, and the model's tokens after it
are wasted work (and noise for the answer parser). The rule is derived from the prompt's last line, so
it holds for user formats too:

* a reasoning lead ("... step by step."): the reasoning ends at a blank line or a new line that opens one
  of the prompt's fields ("Sentence:", "Context:": the model starting a new example), or once the sentence
  that gives the answer ("... the answer is X.") is complete;
* an open field ("Explanation:", any label but an answer's: "Answer:", "A:"): free text up to a blank line
  or a field of the prompt;
* anything else is an answer lead ("Answer: The", "... refers to the"): one short phrase, up to the end
  of the line or sentence, within ``ANSWER_BUDGET`` tokens.

A stop string is cut off with what follows it (as lm-evaluation-harness ``generate_until`` does), once
the text has begun (whitespace the model starts with does not end it); the
answer sentence is kept up to its final mark. ``StopRule.cut`` is the one definition of both: the HF
engine calls it after each generated token to stop a row early, other backends apply it to their text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

ANSWER_BUDGET = 8  # tokens: an answer option (a candidate or a listed option), plus punctuation
_ANSWER_SENTENCE = r"answer is\b[^.\n]*[.\n]"


@dataclass(frozen=True)
class StopRule:
    """``strings``: text that ends a generation (cut with what follows); ``answer``: a regular expression
    whose first match ends it (kept through the match); ``budget``: the format's most new tokens (None:
    the condition's ``max_new_tokens`` alone)."""

    strings: tuple[str, ...] = ()
    answer: str | None = None
    budget: int | None = None

    def key(self) -> list:
        """JSON-safe, for the result cache's key: a different rule is a different request."""
        return [list(self.strings), self.answer, self.budget]

    def cut(self, text: str) -> tuple[bool, str]:
        """(stopped, the text up to where it stops). ``stopped`` False: the generation may go on."""
        # whitespace the model starts with does not end it (a stop string's own leading newline may be part of it)
        if not text.strip():
            return False, text
        end, start = None, max(len(text) - len(text.lstrip()) - 1, 0)
        for s in self.strings:
            i = text.find(s, start)
            if i >= 0 and (end is None or i < end):
                end = i
        if self.answer is not None:
            m = re.search(self.answer, text[:end] if end is not None else text, re.IGNORECASE)
            if m is not None:
                end = m.end()
        return (True, text[:end]) if end is not None else (False, text)

    def tokens(self, max_new_tokens: int) -> int:
        """The token budget: the condition's, within the format's own."""
        return min(int(max_new_tokens), self.budget) if self.budget is not None else int(max_new_tokens)


REASONING = StopRule(strings=("\n\n",), answer=_ANSWER_SENTENCE)
FREE_TEXT = StopRule(strings=("\n\n",))
SHORT_ANSWER = StopRule(strings=("\n", "."), budget=ANSWER_BUDGET)
_ANSWER_LABELS = {"a", "answer", "the answer", "answer is", "the answer is", "assistant"}
_FIELD = re.compile(r"^([A-Z][A-Za-z ]{0,24}):", re.MULTILINE)


def field_labels(prompt: str) -> tuple[str, ...]:
    """``"\nLabel:"`` for each field the prompt's lines open ("Sentence:", "Context:", "Question:"), but the
    last line's (the lead the model answers after): a generation that writes one starts a new example."""
    text = prompt.rstrip(" ")
    cut = text.rfind("\n")  # body: the lines before the last; lead: the last line
    body, lead = text[:max(cut, 0)], text[cut + 1:]
    own = _FIELD.match(lead.strip())
    found = dict.fromkeys(m.group(1) for m in _FIELD.finditer(body))
    return tuple(f"\n{label}:" for label in found if not (own and label == own.group(1)))


def rule_for_prompt(prompt: str) -> StopRule:
    """The stop rule of a prompt, from its last line (see the module's docstring); the fields its other lines
    open (``field_labels``) end a reasoning or an explanation too."""
    last = prompt.rstrip(" ").rsplit("\n", 1)[-1].strip().lower()
    label = last[:-1].strip() if last.endswith(":") else None
    if "step by step" in last:
        base = REASONING
    elif label and label not in _ANSWER_LABELS:
        base = FREE_TEXT
    else:
        return SHORT_ANSWER
    return replace(base, strings=base.strings + field_labels(prompt))
