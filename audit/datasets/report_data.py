"""What a dataset tells the report's summary layer, as plain data (``audit.report`` formats it).

A dataset package may not import ``audit.report`` (the import contracts), so it declares:

* its record fields the report labels and writes: :class:`RecordField` (label, range, where in a
  condition's entry), and which of them a gate's estimate reads (``Dataset.report_gate_fields``);
* its executive-summary sentences as :class:`Finding`: text parts with the numbers left to the report
  (:class:`Quantity`, a recorded statistic written by the report's register; :class:`Interval`;
  :class:`Number`; :class:`Estimate`; :class:`Percent`), so one place writes every number;
* its paired changes between two runs (:class:`ComparedQuantity`) and its columns of the terminal and
  step-summary table (``Dataset.report_table_header`` / ``report_table_cells``, cells as parts).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Callable, Union


@dataclass(frozen=True)
class RecordField:
    """A statistic of a condition's entry in results.json: its label, the range it can take (intervals are
    drawn and written inside it) and where it is: ``path`` into the condition's entry (or into the
    model's ``transfer`` entry of the condition when ``in_transfer``)."""

    label: str
    value_range: tuple[float, float] | None
    path: tuple[str, ...]
    in_transfer: bool = False

    def value(self, cond: Mapping, transfer: Mapping | None = None) -> Any:
        node: Any = (transfer or {}) if self.in_transfer else cond
        for key in self.path:
            node = node.get(key) if isinstance(node, Mapping) else None
        return node


#: the transfer correlation every dataset's record has (``Dataset.bias_by_unit``, intrinsic vs condition)
TRANSFER_FIELDS = {
    "pearson": RecordField("transfer r", (-1.0, 1.0), ("pearson",), in_transfer=True),
    "spearman": RecordField("Spearman \u03c1", (-1.0, 1.0), ("spearman",), in_transfer=True),
}


# --- the parts of a sentence or table cell -------------------------------------------------------


@dataclass(frozen=True)
class Quantity:
    """A recorded statistic (a key of the dataset's ``report_fields``) of a model under a condition,
    written by the report's register of numbers (one label, one value, its decimals)."""

    model: str
    condition: str
    field: str
    sign: bool = False


@dataclass(frozen=True)
class Interval:
    """An interval written '[lo, hi]' inside the range of the field it belongs to; a dash when absent."""

    ci: Any
    field: str


@dataclass(frozen=True)
class Number:
    value: Any
    digits: int = 3
    sign: bool = False
    missing: str | None = None  # None: the report's dash


@dataclass(frozen=True)
class Estimate:
    """'0.84 [0.80, 0.88]': a value with its interval when it has one."""

    value: Any
    ci: Any = None
    digits: int = 2
    sign: bool = False


@dataclass(frozen=True)
class Percent:
    value: Any
    digits: int = 1
    missing: str | None = None


@dataclass(frozen=True)
class Where:
    """(model, condition) pairs, listed as the report lists places ('m under c', or a count when many)."""

    pairs: tuple[tuple[str, str], ...]


Part = Union[str, Quantity, Interval, Number, Estimate, Percent, Where]


@dataclass(frozen=True)
class Finding:
    """One statement of the executive summary: a title, the sentence as parts, whether the finding holds
    (``fired``) and ``empty`` when there is nothing to say (the page leaves it out)."""

    key: str
    title: str
    parts: tuple[Part, ...]
    fired: bool
    empty: bool = False


@dataclass(frozen=True)
class ComparedQuantity:
    """A statistic compared between the approved run and this one, per model and condition: ``change``
    (this run's condition entry, the approved one's, the bootstrap settings) gives the paired change and
    its interval; ``field`` the recorded value shown 'then -> now'. ``key`` prefixes the comparison row's
    keys (``KEY_before``, ``KEY_change``, ``KEY_change_ci``, ``KEY_worse`` ...); a positive change is worse."""

    key: str
    label: str
    caption: str
    field: RecordField
    change: Callable[[Mapping, Mapping, Mapping], tuple[float, tuple[float, float]]]


# --- reading a record --------------------------------------------------------------------------------


def record_config(results: Mapping) -> Mapping:
    config = (results.get("provenance") or {}).get("config")
    return config if isinstance(config, Mapping) else {}


def transfer_reference(results: Mapping) -> str:
    """The condition transfer is measured from (the config's ``baseline``; ``intrinsic`` by default)."""
    config = record_config(results)
    return str(config.get("transfer_from") or config.get("baseline") or "intrinsic")


def boot_settings(results: Mapping) -> dict:
    """The record's resampling settings (``n_resamples``, ``seed``) for intervals the report computes."""
    config = record_config(results)
    return {"n_resamples": int(config.get("n_resamples") or 1000), "seed": int(config.get("seed") or 0)}


def conditions(results: Mapping) -> Iterator[tuple[str, str, Mapping]]:
    """(model name, condition name, condition entry) over the record."""
    for model in results.get("models") or []:
        for name, cond in (model.get("conditions") or {}).items():
            if isinstance(cond, Mapping):
                yield model.get("name", "?"), name, cond
