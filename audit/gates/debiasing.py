"""Measure of the ``debiasing_no_increase`` gate: a debiasing prompt may not raise bias."""

from __future__ import annotations

from typing import TYPE_CHECKING

from audit.gates.contract import GateSkipped
from audit.gates.registry import Measurement

if TYPE_CHECKING:
    from audit.gates.contract import GateContext


def measure_debiasing_change(ctx: "GateContext") -> Measurement:
    """The paired change (strategy minus reference) of the dataset's bias estimand (``Dataset.bias_change``:
    WinoBias theta^2 paired by twin pair; BBQ its A-SB analogue over templates); applies only to
    conditions that are debiasing strategies, and to datasets that have such an estimand."""
    cfg = ctx.config
    if not cfg.conditions[ctx.condition].strategy:
        raise GateSkipped(f"'{ctx.condition}' is not a debiasing strategy (no `strategy` in its condition)")
    if cfg.debiasing_reference not in cfg.conditions:
        raise GateSkipped(f"no reference condition '{cfg.debiasing_reference}' to compare with")
    ref, run = ctx.at(cfg.debiasing_reference).run, ctx.run
    found = ctx.dataset.bias_change((ref.items, ref.selections), (run.items, run.selections), ctx.boot)
    if found is None:
        raise GateSkipped(f"dataset '{ctx.dataset.name}' declares no headline bias to compare "
                          "(Dataset.headline_bias, or its own Dataset.bias_change)")
    change, ci, what = found
    return Measurement(change, ci, note=f"{what} under '{cfg.debiasing_reference}' -> '{ctx.condition}'")
