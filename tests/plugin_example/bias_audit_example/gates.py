"""The ``words_frame_gap`` gate: the mean frame gap of the ``words`` dataset, with a bootstrap interval
over the dataset's pairs."""

from __future__ import annotations

from audit import GateSpec, Measurement, bootstrap_interval, register_gate


def measure_frame_gap(ctx) -> Measurement:
    run, ds = ctx.run, ctx.dataset
    return Measurement(ds.frame_gap(run.items, run.selections),
                       bootstrap_interval(run.items, run.selections, ds.frame_gap, key=ds.pair_key, **ctx.boot))


register_gate(GateSpec(
    "words_frame_gap", "max", "mean frame gap of fruit answers",
    "The model calls the same word a fruit more often in one phrasing of the question than in the other.",
    measure_frame_gap, datasets=("words",)))
