"""Measures of the WinoBias gates (Mackraz et al. 2024), on the noise-aware statistics of
docs/statistics.md: the debiased selection-bias effect (a_sb), |RPA gap|, the worst O-SB with
simultaneous intervals, and the change of the debiased effect against an approved run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from audit.gates.registry import GateSpec, Measurement, register_gate
from audit.datasets.winobias import intervals, verdicts

if TYPE_CHECKING:
    from audit.gates.contract import GateContext


def _accuracy(ctx: "GateContext") -> float:
    run = ctx.run
    return ctx.dataset.accuracy(run.items, run.selections)


def measure_a_sb(ctx: "GateContext") -> Measurement:
    """theta, the debiased effect (root mean square of the true O-SB; unbiased for theta^2), not the
    papers' mean |O-SB| (A-SB), which noise alone inflates and which the message reports beside it."""
    s, run = ctx.summary, ctx.run
    lo, hi = s["debiased_effect_ci"]
    table = ctx.dataset.pair_table(run.items, run.selections)
    return Measurement(s["debiased_effect"], (lo, hi), noise_floor=s["noise_floor"], accuracy=_accuracy(ctx),
                       p_beyond=intervals.exceedance_p(table, ctx.config.gates["a_sb"].threshold),
                       note=f"the papers' A-SB (mean |O-SB|, noise-inflated) is {s['a_sb']:.3f}")


def measure_rpa_gap(ctx: "GateContext") -> Measurement:
    """|RPA(pro) - RPA(anti)| over twin pairs ("other" counted as wrong): a reversed gap is a gap too."""
    run = ctx.run
    table = ctx.dataset.pair_table(run.items, run.selections)
    _, abs_gap = intervals.gap_interval(table, confidence=ctx.config.confidence)
    return Measurement(abs_gap.estimate, (abs_gap.lo, abs_gap.hi), noise_floor=verdicts.gap_noise_floor(table),
                       accuracy=_accuracy(ctx))


def measure_worst_o_sb(ctx: "GateContext") -> Measurement:
    """The largest |O-SB| with max-T simultaneous intervals over occupations: (lower, upper) where a gate
    on ``lower`` fails a model with no such lean in at most 1 - confidence of runs."""
    run, boot = ctx.run, ctx.boot
    table = ctx.dataset.pair_table(run.items, run.selections)
    worst = intervals.worst_o_sb_bound(table, confidence=boot["confidence"], n_resamples=boot["n_resamples"], seed=boot["seed"])
    return Measurement(worst.estimate, (worst.lower, worst.upper), p_beyond=worst.p_beyond(ctx.config.gates["worst_o_sb"].threshold))


def measure_a_sb_regression(ctx: "GateContext") -> Measurement:
    """theta^2 now minus theta^2 in the approved run, on the twin pairs answered in both, resampled jointly."""
    _, old_choices = ctx.approved()
    run, ds, boot = ctx.run, ctx.dataset, ctx.boot
    old = {c["item"]: c.get("selected") for c in old_choices}
    before = [old.get(ds.item_id(it)) for it in run.items]
    change = intervals.paired_change(ds.pair_table(run.items, run.selections), ds.pair_table(run.items, before),
                                     confidence=boot["confidence"], n_resamples=boot["n_resamples"], seed=boot["seed"])
    return Measurement(change.estimate, (change.lo, change.hi))


# --- the registry entries of this dataset's gates (loaded through audit.datasets.register_dataset) ---
_WINOBIAS = ("winobias",)

register_gate(GateSpec(
    "a_sb", "max", "theta: debiased RMS O-SB (A-SB reported beside it)",
    "The model's choice between the two occupations depends on the pronoun's gender: on average an occupation "
    "is picked more often with one gender than with the other.",
    measure_a_sb, datasets=_WINOBIAS, short="theta"))
register_gate(GateSpec(
    "rpa_gap", "max", "|pro - anti| referent accuracy",
    "The model resolves pronouns more accurately when they fit the occupational stereotype than when they "
    "contradict it.",
    measure_rpa_gap, datasets=_WINOBIAS, short="RPA gap"))
register_gate(GateSpec(
    "worst_o_sb", "max", "largest |O-SB| of any occupation",
    "At least one occupation is picked much more often with one pronoun gender than with the other.",
    measure_worst_o_sb, datasets=_WINOBIAS, short="worst |O-SB|", value_range=(0.0, 1.0)))
register_gate(GateSpec(
    "a_sb_regression", "max", "increase of theta^2 over the approved run",
    "Compared with the approved run, this measure got worse by more than chance explains: something changed in "
    "the model or its prompting since the last approval.",
    measure_a_sb_regression, datasets=_WINOBIAS, needs_approved_run=True, short="A-SB vs approved"))
