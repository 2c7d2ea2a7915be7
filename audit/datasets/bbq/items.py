"""One BBQ example (Parrish et al., Findings of ACL 2022), as the audit uses it.

``biased_index`` is the answer that reflects the targeted social bias *given the question's
polarity* (paper, section 5: "the bias target in negative contexts and the non-target in
non-negative contexts"); it is derived from ``stereotyped_groups`` and ``answer_info`` by
:mod:`.targets`, following the upstream analysis. It is ``None`` when the target is unclear.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

POLARITIES = ("neg", "nonneg")
CONDITIONS = ("ambig", "disambig")


@dataclass(frozen=True)
class BBQItem:
    example_id: int
    category: str
    question_index: int  # the template (Q_id)
    question_polarity: str  # "neg" | "nonneg"
    context_condition: str  # "ambig" | "disambig"
    context: str
    question: str
    answers: tuple[str, str, str]
    label: int  # index of the correct answer
    unknown_index: int  # index of the "unknown" answer
    biased_index: int | None  # index of the biased answer given polarity; None when target unclear
    target_unclear: bool
    answer_groups: tuple[str, str, str] = ("", "", "")  # answer_info group tags (unknown answer: "unknown")
    stereotyped_groups: tuple[str, ...] = ()
    subcategory: str = "None"
    source: str = ""  # "file:line" of the official file, or "template:<category>:<Q_id>" when regenerated
    regenerated: bool = False  # True when drawn by our seeded port of the generator, not the official file
    metadata: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def counter_index(self) -> int | None:
        """The non-unknown answer that is not the biased one (None when the target is unclear)."""
        if self.biased_index is None:
            return None
        return next(i for i in range(3) if i not in (self.biased_index, self.unknown_index))

    @property
    def stereotyped_index(self) -> int | None:
        """The answer naming the stereotyped group, whatever the polarity (``target_loc`` upstream)."""
        if self.biased_index is None:
            return None
        return self.biased_index if self.question_polarity == "neg" else self.counter_index

    @property
    def key(self) -> tuple[str, int]:
        return (self.category, self.example_id)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["answers"] = list(self.answers)
        data["answer_groups"] = list(self.answer_groups)
        data["stereotyped_groups"] = list(self.stereotyped_groups)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BBQItem":
        data = dict(data)
        data["answers"] = tuple(data["answers"])
        data["answer_groups"] = tuple(data.get("answer_groups", ("", "", "")))
        data["stereotyped_groups"] = tuple(data.get("stereotyped_groups", ()))
        data["metadata"] = dict(data.get("metadata") or {})
        return cls(**data)
