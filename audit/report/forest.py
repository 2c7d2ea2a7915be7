"""The report's estimate charts (inline SVG): dots with confidence intervals, one row per condition.

Forest plots of the transfer correlation (Mackraz et al. 2024; Sivakumar, Mackraz et al. 2025) and of
A-SB (or a debiased effect) per condition, the few-shot composition effects, and models side by side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .format import fmt_estimate, fmt_num
from .svg import MARKERS, PALETTE, Chart, figure, styled, to_svg, wrap


def _n(value, digits: int = 2) -> str:
    return fmt_num(value, digits, missing="n/a")


# --- Estimates with intervals (few-shot composition, models side by side) --------------------------------


@dataclass(frozen=True)
class Estimate:
    value: float | None
    ci: Sequence[float] | None = None
    sd: float | None = None  # spread over seeds (few-shot draws)


def _errorbars(ax, ys, estimates: Sequence[Estimate], colour: str, marker: str, label: str) -> None:
    xs = np.array([np.nan if e.value is None else e.value for e in estimates], dtype=float)
    lo = np.array([0 if e.ci is None or e.value is None else e.value - e.ci[0] for e in estimates], dtype=float)
    hi = np.array([0 if e.ci is None or e.value is None else e.ci[1] - e.value for e in estimates], dtype=float)
    ax.errorbar(xs, ys, xerr=np.vstack([np.clip(lo, 0, None), np.clip(hi, 0, None)]), fmt=marker, color=colour,
                markersize=5, capsize=2.5, linewidth=1.1, label=label)


def _estimate_text(e: Estimate) -> str:
    text = fmt_estimate(e.value, e.ci)
    if e.sd is not None:
        text += f" (seed sd {e.sd:.3f})"
    return text


@styled
def composition_chart(
    chart_id: str,
    model: str,
    rows: Sequence[tuple[str, Estimate, Estimate]],
    references: Mapping[str, tuple[float | None, float | None]],
) -> Chart:
    """A-SB and RPA gap of each few-shot condition (labelled by its shot composition), with intervals.

    ``rows`` are (label, A-SB, RPA gap); ``references`` map a condition name (intrinsic, zero_shot) to its
    (A-SB, RPA gap), drawn as vertical lines.
    """
    n = len(rows)
    fig = figure(9.5, 1.5 + 0.55 * n)
    axes = fig.subplots(1, 2, sharey=True)
    ys = np.arange(n)
    alt = [f"Dot plots with confidence intervals of A-SB and RPA gap for each few-shot composition, model {model}."]
    styles = (("#555555", ":"), ("#000000", "--"))
    for col, (ax, metric) in enumerate(zip(axes, ("A-SB", "RPA gap (pro - anti)"))):
        _errorbars(ax, ys, [r[1 + col] for r in rows], PALETTE[0], "o", "few-shot (seed sd in the table)")
        for (ref, values), (colour, style) in zip(references.items(), styles):
            if values[col] is not None:
                ax.axvline(values[col], color=colour, linestyle=style, linewidth=1.4, label=ref)
        ax.axvline(0, color="#aaaaaa", linewidth=0.6)
        clamp_axis(ax, (0.0, 1.0) if col == 0 else (-1.0, 1.0))  # scaled to the data, inside the range
        ax.set_xlabel(metric)
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
    axes[0].set_yticks(ys, [label for label, _, _ in rows])
    axes[0].set_ylim(n - 0.5, -0.5)
    for label, a_sb, gap in rows:
        alt.append(f"{label}: A-SB {_estimate_text(a_sb)}, RPA gap {_estimate_text(gap)}.")
    for ref, (a_sb, gap) in references.items():
        alt.append(f"Reference {ref}: A-SB {_n(a_sb)}, RPA gap {_n(gap)}.")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper left", ncols=3, frameon=False)
    return to_svg(fig, chart_id, f"Few-shot composition effects, {model}", " ".join(alt))


@styled
def models_chart(
    chart_id: str,
    conditions: Sequence[str],
    models: Sequence[tuple[str, Mapping[str, tuple[Estimate, Estimate]]]],
) -> Chart:
    """A-SB and RPA gap per condition, one colour and marker per model, side by side."""
    n = len(conditions)
    m = len(models)
    fig = figure(9.5, 1.5 + 0.24 * n * max(m, 2))
    axes = fig.subplots(1, 2, sharey=True)
    ys = np.arange(n)
    offsets = (np.arange(m) - (m - 1) / 2) * min(0.7 / max(m, 1), 0.25)
    alt = [f"Dot plots with confidence intervals of A-SB and RPA gap per condition for {m} models side by side."]
    for col, (ax, metric) in enumerate(zip(axes, ("A-SB", "RPA gap (pro - anti)"))):
        for k, (model, values) in enumerate(models):
            estimates = [values.get(c, (Estimate(None), Estimate(None)))[col] for c in conditions]
            _errorbars(ax, ys + offsets[k], estimates, PALETTE[k % len(PALETTE)], MARKERS[k % len(MARKERS)], model)
        ax.axvline(0, color="#aaaaaa", linewidth=0.6)
        ax.set_xlabel(metric)
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
    axes[0].set_yticks(ys, [wrap(c, 28) for c in conditions])
    axes[0].set_ylim(n - 0.5, -0.5)
    for model, values in models:
        parts = [f"{c} A-SB {_n(values[c][0].value)}, gap {_n(values[c][1].value)}" for c in conditions if c in values]
        alt.append(f"{model}: " + "; ".join(parts) + ".")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper left", ncols=min(m, 4), frameon=False)
    return to_svg(fig, chart_id, "Models side by side: A-SB and RPA gap per condition", " ".join(alt))


# --- Forest plots: one row per condition, one marker per model, panels side by side ------------------------


@dataclass(frozen=True)
class Reference:
    """A vertical reference mark: e.g. the papers' reported transfer, or zero change."""

    x: float
    label: str
    style: str = "--"
    colour: str = "#555555"


@dataclass(frozen=True)
class ForestPanel:
    xlabel: str
    series: Sequence[tuple[str, Mapping[str, Estimate]]]  # (model, condition -> estimate)
    references: Sequence[Reference] = ()
    bands: Mapping[tuple[str, str], tuple[float, float]] | None = None  # (model, condition) -> noise-floor band
    xlim: tuple[float, float] | None = None
    clamp: tuple[float, float] | None = None  # the statistic's range: the axis is scaled to the data, never beyond


def clamp_axis(ax, bounds: tuple[float, float] | None) -> None:
    """Keep the data-scaled axis inside the statistic's range (a correlation's axis never past +-1)."""
    if bounds is not None:
        lo, hi = ax.get_xlim()
        pad = 0.02 * (bounds[1] - bounds[0])
        ax.set_xlim(max(lo, bounds[0] - pad), min(hi, bounds[1] + pad))


@styled
def forest_chart(chart_id: str, title: str, conditions: Sequence[str], panels: Sequence[ForestPanel], *,
                 row_noun: str = "condition", series_noun: str = "model") -> Chart:
    """Estimates with intervals per condition (rows) for each model (marker), one panel per measure
    (``row_noun``/``series_noun`` name the rows and markers when they are something else, e.g. categories)."""
    n, models = len(conditions), list(dict.fromkeys(m for p in panels for m, _ in p.series))
    fig = figure(3.2 + 3.3 * len(panels), 1.0 + 0.15 * n * max(len(models), 1.6))
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    ys = np.arange(n)
    step = min(0.7 / max(len(models), 1), 0.3)
    offsets = {m: (k - (len(models) - 1) / 2) * step for k, m in enumerate(models)}
    alt = [f"Forest plot: {title}; one row per {row_noun}, one marker per {series_noun}, bars are confidence intervals."]
    banded = False
    for ax, panel in zip(axes, panels):
        for (model, cond), (lo, hi) in (panel.bands or {}).items():
            if cond in conditions:
                ax.barh(conditions.index(cond) + offsets.get(model, 0), hi - lo, left=lo, height=step * 0.9,
                        color="#e3e3e3", linewidth=0, label=None if banded else "noise floor")
                banded = True
        for model, values in panel.series:
            k = models.index(model)
            estimates = [values.get(c, Estimate(None)) for c in conditions]
            _errorbars(ax, ys + offsets[model], estimates, PALETTE[k % len(PALETTE)], MARKERS[k % len(MARKERS)], model)
            alt.append(f"{panel.xlabel}, {model}: " + "; ".join(f"{c} {_estimate_text(values[c])}"
                                                                for c in conditions if c in values) + ".")
        for ref in panel.references:
            ax.axvline(ref.x, color=ref.colour, linestyle=ref.style, linewidth=1.1, label=ref.label)
            alt.append(f"Reference line at {ref.x:g}: {ref.label}.")
        if panel.xlim:
            ax.set_xlim(*panel.xlim)
        clamp_axis(ax, panel.clamp)
        ax.set_xlabel(panel.xlabel)
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
    axes[0].set_yticks(ys, [wrap(c, 34) for c in conditions])
    axes[0].tick_params(axis="y", labelsize=8)
    axes[0].set_ylim(n - 0.5, -0.5)
    handles, labels = {}, []
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    labels = list(handles)
    fig.legend([handles[x] for x in labels], labels, loc="outside upper left", ncols=min(len(labels), 5), frameon=False)
    return to_svg(fig, chart_id, title, " ".join(alt))
