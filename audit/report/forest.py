"""The report's estimate charts (inline SVG): dots with confidence intervals, one row per condition.

Forest plots (:func:`forest_chart`: e.g. the transfer correlation per condition, Mackraz et al. 2024;
Sivakumar, Mackraz et al. 2025) and panels of estimates side by side (:func:`dot_plot`), as a dataset's
report view declares them (``audit.datasets.report_charts``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from audit.datasets.report_charts import DotPlot

from .format import fmt_estimate, fmt_num
from .svg import MARKERS, PALETTE, Chart, figure, styled, to_svg, wrap


def _n(value, digits: int = 2) -> str:
    return fmt_num(value, digits, missing="n/a")


# --- Estimates with intervals, panels side by side ----------------------------------------------------


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
def dot_plot(chart: DotPlot) -> Chart:
    """Estimates with intervals per row, one panel per measure side by side, one colour and marker per series
    (declared by a dataset: e.g. WinoBias's few-shot compositions, or its models side by side)."""
    n = len(chart.rows)
    names = list(dict.fromkeys(s for p in chart.panels for s in p.get("series") or {}))
    m = len(names)
    fig = figure(9.5, 1.5 + chart.row_height * n)
    axes = fig.subplots(1, len(chart.panels), sharey=True, squeeze=False)[0]
    ys = np.arange(n)
    offsets = (np.arange(m) - (m - 1) / 2) * min(0.7 / max(m, 1), 0.25)
    alt = [chart.description]
    for ax, panel in zip(axes, chart.panels):
        bounds = tuple(panel["range"]) if panel.get("range") else None
        series = panel.get("series") or {}
        for k, name in enumerate(names):
            values = {row: declared_estimate(v, bounds) for row, v in (series.get(name) or {}).items()}
            _errorbars(ax, ys + offsets[k], [values.get(r, Estimate(None)) for r in chart.rows],
                       PALETTE[k % len(PALETTE)], MARKERS[k % len(MARKERS)], name)
            alt.append(f"{panel.get('name') or panel.get('label')}, {name}: "
                       + "; ".join(f"{' '.join(r.split())}: {_estimate_text(values[r])}" for r in chart.rows if r in values) + ".")
        for x, label, style, colour in panel.get("references") or ():
            if x is not None:
                ax.axvline(x, color=colour, linestyle=style, linewidth=1.4, label=label)
                alt.append(f"Reference {label}: {panel.get('name') or panel.get('label')} {_n(x)}.")
        ax.axvline(0, color="#aaaaaa", linewidth=0.6)
        if panel.get("clamp"):
            clamp_axis(ax, bounds)  # scaled to the data, inside the range
        ax.set_xlabel(str(panel.get("label", "")))
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
    axes[0].set_yticks(ys, [wrap(r, chart.wrap) if chart.wrap else r for r in chart.rows])
    axes[0].set_ylim(n - 0.5, -0.5)
    handles: dict = {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    fig.legend(list(handles.values()), list(handles), loc="outside upper left", ncols=min(len(handles), 4) or 1,
               frameon=False)
    return to_svg(fig, chart.id, chart.title, " ".join(alt))


def declared_estimate(value, bounds: tuple[float, float] | None = None) -> Estimate:
    """A declared ``(estimate, lo, hi[, seed sd])`` as an Estimate, its interval inside ``bounds`` when given."""
    if not isinstance(value, (list, tuple)) or len(value) not in (3, 4):
        return Estimate(None)
    est, lo, hi, *sd = (None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in value)
    ci = (lo, hi) if lo is not None and hi is not None else None
    if ci is not None and bounds is not None:
        ci = tuple(min(max(v, bounds[0]), bounds[1]) for v in ci)
    return Estimate(est, ci, sd[0] if sd else None)


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
