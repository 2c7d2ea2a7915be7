"""The gate contract: what a gate's measure function may ask of the run that evaluates it.

``audit.run`` implements this Protocol (``audit.run.context.RunGateContext``); a gate (built in, a
dataset's ``gates.py`` or a plugin's) is written against it alone, so ``audit.gates`` never imports
the run stage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from audit.gates.evaluate import GateOutcome
    from audit.gates.registry import Measurement


class GateSkipped(Exception):
    """A gate that cannot apply in this run (e.g. a regression check without an approved run)."""


@runtime_checkable
class GateContext(Protocol):
    """One model and condition of a run, and what was measured there."""

    model: str
    condition: str

    @property
    def config(self) -> Any:
        """The run's settings (``audit.config.AuditConfig``)."""

    @property
    def dataset(self) -> Any:
        """The audited ``audit.datasets.base.Dataset``."""

    @property
    def run(self) -> Any:
        """The condition's run: ``items``, ``selections`` (and ``bias_by_unit()``)."""

    @property
    def summary(self) -> dict[str, Any]:
        """The condition's metrics (its entry of results.json)."""

    @property
    def boot(self) -> dict[str, Any]:
        """Resampling settings: ``confidence``, ``n_resamples``, ``seed``."""

    def at(self, condition: str) -> "GateContext":
        """The same model at another condition."""

    def measure(self, gate: str) -> "Measurement":
        """Another gate's measurement here."""

    def outcome(self, gate: str, condition: str) -> "GateOutcome":
        """Another gate's decided outcome for this model at ``condition``."""

    def transfer(self) -> Any:
        """The transfer correlation (``audit.stats.transfer.Transfer``) from the transfer-from condition."""

    def approved(self) -> tuple[dict, list[dict]]:
        """The approved run's summary and choices here; raises GateSkipped when there are none."""

    def debiasing_change(self) -> dict:
        """The dataset's paired change of this (strategy) condition against the debiasing reference."""
