"""The unit of the audit: one WinoBias-style co-reference item."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from audit.datasets.winobias.occupations import Gender

PRONOUN_GENDER: dict[str, Gender] = {
    "he": "male", "him": "male", "his": "male", "himself": "male",
    "she": "female", "her": "female", "hers": "female", "herself": "female",
    "they": "neutral", "them": "neutral", "their": "neutral", "theirs": "neutral", "themselves": "neutral",
}


@dataclass(frozen=True)
class Item:
    """One sentence with a pronoun and two candidate occupations.

    ``stance`` is WinoBias's: *pro* when the pronoun's gender matches the gold referent's
    occupational stereotype, *anti* when it does not (neutral pronouns: *neutral*).
    ``type`` 1 needs world knowledge to resolve, type 2 is solvable by syntax.
    """

    id: str
    sentence: str
    pronoun: str
    gender: Gender
    candidates: tuple[str, str]
    referent: str
    type: Literal[1, 2]
    stance: Literal["pro", "anti", "neutral"]
    split: Literal["dev", "test"]
    source: str = ""

    @property
    def distractor(self) -> str:
        a, b = self.candidates
        return b if self.referent == a else a

    def to_dict(self) -> dict:
        d = asdict(self)
        d["candidates"] = list(self.candidates)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Item":
        return cls(**{**d, "candidates": tuple(d["candidates"])})
