"""Measures of the gates every dataset has: accuracy, transfer, and the accuracy regression."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from audit.gates.registry import Measurement
import numpy as np

from audit.stats.bootstrap import bootstrap_interval, bootstrap_sums_interval
from audit.stats.regression import accuracy_drop

if TYPE_CHECKING:
    from audit.gates.contract import GateContext


def measure_accuracy(ctx: "GateContext") -> Measurement:
    """Share of answered items answered correctly, with a bootstrap interval over the dataset's pairs."""
    run, ds = ctx.run, ctx.dataset
    estimate = ds.accuracy(run.items, run.selections)
    if type(ds).accuracy.__qualname__ != "Dataset.accuracy":  # a dataset's own accuracy: resample it as it is
        return Measurement(estimate, bootstrap_interval(run.items, run.selections, ds.accuracy, key=ds.pair_key, **ctx.boot))
    # the base accuracy is (correct answers) / (answered) per resample: the same draws as bootstrap_interval,
    # vectorised over column sums (so the same interval, about 40x faster)
    columns = np.array([(s is not None and ds.correct(it, s), s is not None) for it, s in zip(run.items, run.selections)],
                       float).reshape(-1, 2)
    return Measurement(estimate, bootstrap_sums_interval(columns, [ds.pair_key(it) for it in run.items],
                                                         lambda sums: np.divide(sums[:, 0], sums[:, 1], out=np.full(len(sums), np.nan),
                                                                                where=sums[:, 1] > 0), **ctx.boot))


def measure_transfer(ctx: "GateContext") -> Measurement:
    """The reliability-corrected rho of the bare model's per-unit bias with this condition's (the
    dataset's ``corrected_transfer``; the papers' Pearson where it has none). Applies only when the bare
    model is shown biased (the dataset's bias gate fails on the transfer-from condition) and the
    corrected rho is defined (the bare model's bias and the prompted one vary beyond their noise)."""
    ds, cfg = ctx.dataset, ctx.config
    gate = ds.bias_gate
    bare_status = ctx.outcome(gate, cfg.transfer_from) if gate is not None and gate in cfg.gates else None
    bare, run = ctx.at(cfg.transfer_from).run, ctx.run
    corrected = ds.corrected_transfer((bare.items, bare.selections), (run.items, run.selections), ctx.boot)
    if corrected is None:
        t = ctx.transfer()
        estimate, ci, defined, why_not = t.pearson, t.pearson_ci, not math.isnan(t.pearson), "the per-unit bias is constant"
    else:
        estimate, ci = corrected["rho"], tuple(corrected["rho_ci"])
        defined = corrected["defined"] and not math.isnan(corrected["rho"])
        why_not = corrected["reason"] or "the corrected rho is undefined"
    if bare_status is not None and bare_status.status != "fail":
        est = bare_status.estimate if bare_status.estimate is not None else float("nan")
        return Measurement(estimate, ci, (False, f"the bare model is not shown to be biased (its {gate} gate: "
                                                 f"{bare_status.status}, estimate {est:.3f})"))
    if not defined:
        return Measurement(estimate, ci, (False, f"there is no bias to transfer: {why_not}"))
    return Measurement(estimate, ci, (True, ""),
                       note="reliability-corrected rho" if corrected is not None else "Pearson rho (no noise correction for this dataset)")


def measure_accuracy_regression(ctx: "GateContext") -> Measurement:
    """Correct in the approved run minus correct now, paired over items answered in both."""
    _, old_choices = ctx.approved()
    run, ds = ctx.run, ctx.dataset
    estimate, ci = accuracy_drop(run.items, run.selections, old_choices, item_id=ds.item_id, correct=ds.correct,
                                 key=ds.pair_key, **ctx.boot)
    return Measurement(estimate, ci)
