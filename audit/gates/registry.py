"""The gate registry: one entry per gate, read by the config (which names exist), the session (how a
gate is measured), the audit suite and the report (what it measures and what a failure means).

Add a gate: a measure function (``GateContext -> Measurement``, ``audit.gates.contract``) and one
``register_gate(GateSpec(...))`` line in the module that owns the statistic: ``audit/gates/__init__.py``
for a dataset-neutral gate, a dataset's ``gates.py`` for its own (the dataset registry names that
module, loaded on the first lookup), or a plugin module named by an entry point in the group
``bias_audit.gates``; then a default threshold with its rationale in a preset, and a test in the suite
(``@pytest.mark.audit_gate("name")``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Literal

from audit.errors import ConfigError

if TYPE_CHECKING:
    from audit.gates.contract import GateContext

Direction = Literal["max", "min"]


@dataclass(frozen=True)
class Measurement:
    """A gate's estimate and confidence interval; ``precondition`` (holds, why-not): when it does not
    hold the gate passes as not applicable (the transfer gate: only a biased bare model can transfer).
    A bias gate also gives its statistic's ``noise_floor`` and the model's ``accuracy``, from which the
    gate may be inconclusive (``audit.gates.evaluate``)."""

    estimate: float
    ci: tuple[float, float]
    precondition: tuple[bool, str] | None = None
    noise_floor: float | None = None
    accuracy: float | None = None
    note: str | None = None  # appended to the outcome's message (e.g. which category is the worst)
    p_beyond: float | None = None  # exact one-sided p of H0 "within the limit" (for Holm); else read off the interval


@dataclass(frozen=True)
class GateSpec:
    name: str
    direction: Direction  # "max": the bound must be <= threshold; "min": >= threshold
    label: str  # what is measured, short
    meaning: str  # what a failure means, in plain words for a stakeholder
    measure: Callable[["GateContext"], Measurement] | str  # or "module:function", imported on first use
    datasets: tuple[str, ...] | None = None  # the datasets it applies to (None: all)
    needs_approved_run: bool = False  # a regression gate: compares with --approved RESULTS_JSON
    skips_transfer_from: bool = False  # not evaluated on the condition transfer is measured from
    strategies_only: bool = False  # evaluated only on debiasing-strategy conditions (those with a `strategy`)
    conditional: bool = False  # applies only when another gate fails (transfer): its fail adds no error to the verdict
    short: str | None = None  # the label of its row in the report's gate matrix (default: ``label``)
    value_range: tuple[float, float] | None = None  # the values its estimate can take (the report clips intervals to it)

    def measure_fn(self) -> Callable[["GateContext"], Measurement]:
        if isinstance(self.measure, str):
            module, _, name = self.measure.partition(":")
            return getattr(importlib.import_module(module), name)
        return self.measure


GATES: dict[str, GateSpec] = {}  # read through all_gates() / gate_spec(): providers load on first lookup
_PROVIDERS: list[str] = []  # modules that register gates when imported (a dataset's gates.py)
ENTRY_POINT_GROUP = "bias_audit.gates"


def register_gate(spec: GateSpec) -> None:
    GATES[spec.name] = spec


def register_gate_module(module: str) -> None:
    """A module whose import registers gates; imported on the next lookup (not now: no import cost)."""
    if module not in _PROVIDERS:
        _PROVIDERS.append(module)


_loaded: set[str] = set()


def _load_providers() -> None:
    from audit.plugins import plugin_entry_points

    for ep in plugin_entry_points(ENTRY_POINT_GROUP):
        register_gate_module(ep.value.partition(":")[0])
    for module in list(_PROVIDERS):
        if module not in _loaded:
            _loaded.add(module)
            importlib.import_module(module)


def all_gates() -> dict[str, GateSpec]:
    """Every registered gate: the neutral ones, each registered dataset's and the plugins'."""
    _load_providers()
    return GATES


def gate_spec(name: str) -> GateSpec:
    if name not in GATES:
        _load_providers()
    try:
        return GATES[name]
    except KeyError:
        raise ConfigError(f"unknown gate '{name}' (known: {', '.join(sorted(GATES))})") from None
