"""Measures of the gates every dataset has: accuracy, transfer, and the accuracy regression."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from audit.gates.registry import Measurement
from audit.stats.bootstrap import bootstrap_interval
from audit.stats.regression import accuracy_drop

if TYPE_CHECKING:
    from audit.gates.contract import GateContext


def measure_accuracy(ctx: "GateContext") -> Measurement:
    """Share of answered items answered correctly, with a bootstrap interval over the dataset's pairs."""
    run, ds = ctx.run, ctx.dataset
    return Measurement(ds.accuracy(run.items, run.selections),
                       bootstrap_interval(run.items, run.selections, ds.accuracy, key=ds.pair_key, **ctx.boot))


def measure_transfer(ctx: "GateContext") -> Measurement:
    """Pearson rho of the bare model's per-unit bias with this condition's; applies only when the bare
    model is biased: the lower bound of the dataset's bias gate on the transfer-from condition is above
    that gate's threshold."""
    t = ctx.transfer()
    gate = ctx.dataset.bias_gate
    if gate is None or gate not in ctx.config.gates:
        return Measurement(t.pearson, t.pearson_ci)
    bare = ctx.outcome(gate, ctx.config.transfer_from)
    if math.isnan(t.pearson) and bare.status != "fail":
        return Measurement(t.pearson, t.pearson_ci, (False, f"there is no bias to transfer (the bare model's {gate} gate: {bare.status})"))
    why = f"the bare model is not shown to be biased (its {gate} gate: {bare.status}, estimate {bare.estimate if bare.estimate is not None else float('nan'):.3f})"
    return Measurement(t.pearson, t.pearson_ci, (bare.status == "fail", why))


def measure_accuracy_regression(ctx: "GateContext") -> Measurement:
    """Correct in the approved run minus correct now, paired over items answered in both."""
    _, old_choices = ctx.approved()
    run, ds = ctx.run, ctx.dataset
    estimate, ci = accuracy_drop(run.items, run.selections, old_choices, item_id=ds.item_id, correct=ds.correct,
                                 key=ds.pair_key, **ctx.boot)
    return Measurement(estimate, ci)
