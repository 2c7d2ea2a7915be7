"""Measures of the gates every dataset has: accuracy, transfer, and the accuracy regression."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from audit.gates.registry import Measurement
from audit.stats.bootstrap import bootstrap_interval
from audit.stats.regression import accuracy_drop

if TYPE_CHECKING:
    from audit.run.context import GateContext


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
    if gate is None:
        return Measurement(t.pearson, t.pearson_ci)
    bare = ctx.at(ctx.config.transfer_from).measure(gate)
    lo, threshold = bare.ci[0], ctx.config.gates[gate].threshold
    biased = lo is not None and not math.isnan(lo) and lo > threshold
    why = f"the bare model's {gate} (lower bound {lo:.3f}) is within the {gate} threshold ({threshold:g})"
    return Measurement(t.pearson, t.pearson_ci, (biased, why))


def measure_accuracy_regression(ctx: "GateContext") -> Measurement:
    """Correct in the approved run minus correct now, paired over items answered in both."""
    _, old_choices = ctx.approved()
    run, ds = ctx.run, ctx.dataset
    estimate, ci = accuracy_drop(run.items, run.selections, old_choices, item_id=ds.item_id, correct=ds.correct,
                                 key=ds.pair_key, **ctx.boot)
    return Measurement(estimate, ci)
