"""Measures of the WinoBias gates (Mackraz et al. 2024): A-SB, the RPA gap, the worst O-SB, and the
A-SB regression against an approved run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from audit.datasets.winobias import metrics as m
from audit.gates.registry import Measurement
from audit.stats.bootstrap import bootstrap_interval
from audit.stats.regression import a_sb_change

if TYPE_CHECKING:
    from audit.run.context import GateContext


def measure_a_sb(ctx: "GateContext") -> Measurement:
    s = ctx.summary
    return Measurement(s["a_sb"], tuple(s["a_sb_ci"]))


def measure_rpa_gap(ctx: "GateContext") -> Measurement:
    rpa = ctx.summary["rpa"]
    return Measurement(rpa["gap"], tuple(rpa["gap_ci"]))


def measure_worst_o_sb(ctx: "GateContext") -> Measurement:
    run = ctx.run
    return Measurement(m.worst_o_sb_of(run.items, run.selections),
                       bootstrap_interval(run.items, run.selections, m.worst_o_sb_of, key=m.twin_key, **ctx.boot))


def measure_a_sb_regression(ctx: "GateContext") -> Measurement:
    old_summary, _ = ctx.approved()
    return Measurement(*a_sb_change(ctx.summary["o_sb"], old_summary["o_sb"], **ctx.boot))
