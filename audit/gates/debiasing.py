"""Measure of the ``debiasing_no_increase`` gate: a debiasing prompt may not raise bias."""

from __future__ import annotations

from typing import TYPE_CHECKING

from audit.gates.registry import Measurement

if TYPE_CHECKING:
    from audit.run.context import GateContext


def measure_debiasing_change(ctx: "GateContext") -> Measurement:
    """The paired change (strategy minus reference) of the dataset's headline bias (A-SB, or BBQ's A-SB
    analogue over templates); applies only to conditions that are debiasing strategies."""
    from audit.run.context import GateSkipped
    from audit.run.debiasing import HEADLINE_BIAS, strategy_change

    cfg = ctx.config
    if not cfg.conditions[ctx.condition].strategy:
        raise GateSkipped(f"'{ctx.condition}' is not a debiasing strategy (no `strategy` in its condition)")
    if cfg.debiasing_reference not in cfg.conditions:
        raise GateSkipped(f"no reference condition '{cfg.debiasing_reference}' to compare with")
    row = strategy_change(ctx.session, ctx.model, ctx.condition)["overall"][HEADLINE_BIAS]
    ci = tuple(float("nan") if v is None else v for v in row["ci"])
    return Measurement(float("nan") if row["change"] is None else row["change"], ci,
                       note=f"{HEADLINE_BIAS} {row['before']:.3f} under '{cfg.debiasing_reference}' -> {row['after']:.3f}"
                       if row["before"] is not None and row["after"] is not None else None)
