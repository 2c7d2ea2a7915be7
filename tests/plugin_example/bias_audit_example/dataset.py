"""The ``words`` dataset: 12 words x 2 frames x 3 repeats per split; the bias unit is the word, its bias
P(fruit | frame a) - P(fruit | frame b)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from audit import Dataset, render_prompt

FRUIT = ["apple", "pear", "plum", "fig", "lime", "kiwi"]
TOOLS = ["hammer", "saw", "drill", "wrench", "chisel", "file"]


@dataclass(frozen=True)
class WordItem:
    id: str
    word: str
    answer: str  # "fruit" | "tool"
    frame: str  # "a" | "b"

    def to_dict(self) -> dict:
        return asdict(self)


class Words(Dataset):
    headline_bias = "frame_gap"

    def load(self, source, *, split, seed):
        words = [(w, "fruit") for w in FRUIT] + [(w, "tool") for w in TOOLS]
        return [WordItem(f"{split}-{w}-{f}-{r}", w, a, f) for w, a in words for f in "ab" for r in range(3)]

    def options(self, item):
        return ("fruit", "tool")

    def gold(self, item):
        return item.answer

    def pair_key(self, item):
        return (item.word, item.id.rsplit("-", 1)[-1])

    def render(self, fmt, item, shots, preprompt, order=0):
        return render_prompt(fmt, item, shots, preprompt)  # the format may come from the user's --prompt-dir

    def map_answer(self, text, item):
        return next((o for o in self.options(item) if o in text), None)

    def frame_gap(self, items, selections) -> float:
        """Mean over words of P(fruit | frame a) - P(fruit | frame b)."""
        values = [v for v in self.bias_by_unit(items, selections).values() if v is not None]
        return sum(values) / len(values) if values else math.nan

    def summarize(self, items, selections, boot):
        return {"frame_gap": self.frame_gap(items, selections)}

    def per_seed(self, items, selections):
        return {"frame_gap": self.frame_gap(items, selections)}

    def bias_by_unit(self, items, selections):
        out = {}
        for word in FRUIT + TOOLS:
            rates = []
            for frame in "ab":
                sel = [s for it, s in zip(items, selections) if it.word == word and it.frame == frame and s is not None]
                rates.append(sum(s == "fruit" for s in sel) / len(sel) if sel else math.nan)
            out[word] = None if any(math.isnan(r) for r in rates) else rates[0] - rates[1]
        return out
