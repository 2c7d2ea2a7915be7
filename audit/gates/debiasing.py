"""Measure of the ``debiasing_no_increase`` gate: a debiasing prompt may not raise bias."""

from __future__ import annotations

from typing import TYPE_CHECKING

from audit.gates.contract import GateSkipped
from audit.gates.registry import Measurement

if TYPE_CHECKING:
    from audit.gates.contract import GateContext


def measure_debiasing_change(ctx: "GateContext") -> Measurement:
    """The paired change (strategy minus reference) of the dataset's headline bias
    (``Dataset.headline_bias``); applies only to conditions that are debiasing strategies."""
    cfg = ctx.config
    metric = ctx.dataset.headline_bias
    if not cfg.conditions[ctx.condition].strategy:
        raise GateSkipped(f"'{ctx.condition}' is not a debiasing strategy (no `strategy` in its condition)")
    if cfg.debiasing_reference not in cfg.conditions:
        raise GateSkipped(f"no reference condition '{cfg.debiasing_reference}' to compare with")
    if metric is None:
        raise GateSkipped(f"dataset '{ctx.dataset.name}' declares no headline bias metric (Dataset.headline_bias)")
    row = (ctx.debiasing_change().get("overall") or {}).get(metric)
    if row is None:
        raise GateSkipped(f"the debiasing change of dataset '{ctx.dataset.name}' has no '{metric}' (its headline bias)")
    ci = tuple(float("nan") if v is None else v for v in row["ci"])
    return Measurement(float("nan") if row["change"] is None else row["change"], ci,
                       note=f"{metric} {row['before']:.3f} under '{cfg.debiasing_reference}' -> {row['after']:.3f}"
                       if row["before"] is not None and row["after"] is not None else None)
