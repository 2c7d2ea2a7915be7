"""The 40 WinoBias occupations with their US labour statistics (share of women).

Zhao et al., "Gender Bias in Coreference Resolution: Evaluation and Debiasing Methods",
NAACL 2018; statistics from the US Bureau of Labor Statistics (CPS table 11). The data live
in ``occupations.csv`` beside this module; this module only reads them.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources
from typing import Literal

Gender = Literal["male", "female", "neutral"]


@dataclass(frozen=True)
class Occupation:
    name: str
    stereotype: Literal["male", "female"]
    pct_women: float
    bls_name: str = ""

    @property
    def male_association(self) -> float:
        """Planted-bias scale in [-1, 1]: share of men minus share of women (positive = male-leaning)."""
        return 1.0 - 2.0 * self.pct_women / 100.0


@functools.lru_cache(maxsize=1)
def occupations() -> tuple[Occupation, ...]:
    """All 40 occupations, male-stereotyped first, in the order of the WinoBias overview."""
    text = resources.files("audit.datasets.winobias").joinpath("occupations.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    return tuple(
        Occupation(r["occupation"], r["stereotype"], float(r["pct_women"]), r["bls_name"] or "")  # type: ignore[arg-type]
        for r in rows
    )


@functools.lru_cache(maxsize=1)
def occupation_index() -> dict[str, Occupation]:
    """Lower-cased name (data-file and BLS spelling) -> occupation."""
    index: dict[str, Occupation] = {}
    for occ in occupations():
        index[occ.name.lower()] = occ
        if occ.bls_name:
            index[occ.bls_name.lower()] = occ
    return index


def lookup_occupation(name: str) -> Occupation | None:
    """The occupation named ``name`` (any case, either spelling), or None if it is not one of the 40."""
    return occupation_index().get(name.strip().lower())
