"""One CrowS-Pairs pair as the audit sees it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

# the two options of every pair, in a fixed order: index 0 scores sent_more, index 1 sent_less
MORE, LESS = "more", "less"
OPTIONS = (MORE, LESS)


@dataclass(frozen=True)
class CrowsPair:
    """``sent_more`` is the more stereotypical sentence (Nangia et al. 2020): for a ``stereo`` pair it
    demonstrates a stereotype of a historically disadvantaged group; for an ``antistereo`` pair
    ``sent_less`` violates one. ``agreement``: how many of the five validators labelled the pair with
    its ``bias_type``. ``source``: ``file:line`` where the row starts."""

    index: int
    sent_more: str
    sent_less: str
    direction: str  # "stereo" | "antistereo"
    bias_type: str
    agreement: int
    annotators: int
    source: str

    @property
    def id(self) -> str:
        return f"crows-{self.index}"

    def sentence(self, option: str) -> str:
        return self.sent_more if option == MORE else self.sent_less

    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("source")  # where the file lies does not change the item (fingerprints stay stable)
        return out
