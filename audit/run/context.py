"""The run's side of the gate contract (``audit.gates.contract.GateContext``): one model and condition
of a session, and what was measured there."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from audit.gates.contract import GateContext, GateSkipped
from audit.gates.registry import Measurement, gate_spec

if TYPE_CHECKING:
    from audit.config import AuditConfig
    from audit.datasets.base import Dataset
    from audit.gates.evaluate import GateOutcome
    from audit.run.conditions import ConditionRun
    from audit.run.session import AuditSession
    from audit.stats.transfer import Transfer

__all__ = ["GateContext", "GateSkipped", "RunGateContext"]


@dataclass(frozen=True)
class RunGateContext:
    session: "AuditSession"
    model: str
    condition: str

    @property
    def config(self) -> "AuditConfig":
        return self.session.config

    @property
    def dataset(self) -> "Dataset":
        return self.session.dataset

    @property
    def run(self) -> "ConditionRun":
        return self.session.run(self.model, self.condition)

    @property
    def summary(self) -> dict[str, Any]:
        return self.session.summary(self.model, self.condition)

    @property
    def boot(self) -> dict[str, Any]:
        return self.config.boot

    def at(self, condition: str) -> "RunGateContext":
        return RunGateContext(self.session, self.model, condition)

    def measure(self, gate: str) -> Measurement:
        return gate_spec(gate).measure_fn()(self)

    def outcome(self, gate: str, condition: str) -> "GateOutcome":
        return self.session.evaluate(gate, self.model, condition)

    def transfer(self) -> "Transfer":
        return self.session.transfer(self.model, self.condition)

    def approved(self) -> tuple[dict, list[dict]]:
        """The approved run's summary and choices for this model and condition; GateSkipped when there are none."""
        from audit.stats.regression import approved_condition

        approved = self.session.approved
        found = approved_condition(approved, self.model, self.condition) if approved else None
        if found is None:
            why = ("no approved run given (--approved RESULTS_JSON)" if approved is None
                   else f"the approved run has no '{self.condition}' for {self.model}")
            raise GateSkipped(f"regression check skipped: {why}")
        return found

    def debiasing_change(self) -> dict:
        from audit.run.debiasing import strategy_change

        return strategy_change(self.session, self.model, self.condition)
