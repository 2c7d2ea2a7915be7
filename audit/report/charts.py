"""Drawing the declared heatmaps, scatter panels and grouped bars (inline SVG).

The kinds are declared by a dataset's report view as plain data (``audit.datasets.report_charts``);
these functions turn each into a :class:`~.svg.Chart` (WinoBias's sections use all three: its bias per
unit and condition, the intrinsic-vs-extrinsic transfer, accuracy by block).
"""

from __future__ import annotations

import numpy as np
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure

from audit.datasets.report_charts import GroupedBars, Heatmap, Scatter

from .format import fmt_ci, fmt_num
from .svg import PALETTE, Chart, figure, styled, to_svg, wrap

LOW, HIGH = PALETTE[3], PALETTE[0]  # a diverging scale: vermilion below the middle, blue above


def _n(value, digits: int = 2) -> str:
    return fmt_num(value, digits, missing="n/a")


def _ci(ci) -> str:
    text = fmt_ci(ci, 2, missing="")
    return f" {text}" if text else ""


# --- Heatmap -----------------------------------------------------------------------------------------------


@styled
def heatmap(chart: Heatmap) -> Chart:
    """Rows x columns coloured on a diverging scale; one compact figure instead of a bar panel per column."""
    rows, columns = list(chart.rows), list(chart.columns)
    lo, hi = chart.limits
    cmap = LinearSegmentedColormap.from_list("diverging", [LOW, "#f7f7f7", HIGH]).with_extremes(bad="#c8c8c8")
    grid = np.ma.masked_invalid(np.array([[np.nan if v is None else v for v in row] for row in chart.values],
                                         dtype=float).reshape(len(rows), len(columns)))
    label_width = 0.45 + 0.062 * max((len(label) for label in rows), default=10)
    top = 0.3 + 0.056 * max((len(c) for c in columns), default=8)
    width, height = label_width + 1.3 + 0.3 * len(columns), top + 0.45 + 0.16 * len(rows)
    fig = Figure(figsize=(width, height))  # fixed margins: constrained layout would double the drawing time
    fig.subplots_adjust(left=label_width / width, right=1 - 1.2 / width, top=1 - top / height, bottom=0.35 / height)
    ax = fig.subplots()
    mesh = ax.pcolormesh(grid, cmap=cmap, vmin=lo, vmax=hi, edgecolors="white", linewidth=0.4)
    if chart.divider:
        ax.axhline(chart.divider, color="#333333", linewidth=0.9, linestyle="--")
    ax.set_yticks(np.arange(len(rows)) + 0.5, rows, fontsize=8)
    ax.set_xticks(np.arange(len(columns)) + 0.5, columns, rotation=90, fontsize=8)
    ax.xaxis.tick_top()
    ax.set_ylim(len(rows), 0)  # first row on top
    ax.tick_params(length=0)
    for side in ("left", "bottom", "top", "right"):
        ax.spines[side].set_visible(False)
    bar = fig.colorbar(mesh, ax=ax, fraction=0.9 / len(columns), pad=0.25 / width, ticks=np.linspace(lo, hi, 5),
                       boundaries=np.linspace(lo, hi, 21))  # 20 steps: vector quads, not a raster image
    bar.set_label(chart.scale_label)
    bar.ax.tick_params(labelsize=8)
    return to_svg(fig, chart.id, chart.title, chart.alt)


# --- Scatter panels --------------------------------------------------------------------------------------


def _data_limits(x: np.ndarray, y: np.ndarray, bounds: tuple[float, float], *, min_span: float = 0.2) -> tuple[float, float]:
    """Equal axis limits that hold every point with a margin, never wider than the statistic's range."""
    values = np.concatenate([x, y, [0.0]])  # zero in view: which side of it a point lies is the finding
    lo, hi = float(values.min()), float(values.max())
    span = max(hi - lo, min_span)
    mid = (lo + hi) / 2
    lo, hi = mid - span / 2 * 1.12, mid + span / 2 * 1.12
    return max(lo, bounds[0] - 0.05), min(hi, bounds[1] + 0.05)


@styled
def scatter(chart: Scatter) -> Chart:
    """One panel per declared panel: the points by group, the least-squares line over all of them, y = x."""
    fig = figure(0.4 + 3.2 * len(chart.panels), 3.9)
    axes = fig.subplots(1, len(chart.panels), squeeze=False)[0]
    alt = [chart.description]
    for ax, panel in zip(axes, chart.panels):
        points = [p for group in panel.groups for p in group.points]
        x = np.array([p[0] for p in points], dtype=float)
        y = np.array([p[1] for p in points], dtype=float)
        lo, hi = _data_limits(x, y, chart.limits)
        ax.plot([lo, hi], [lo, hi], color="#bbbbbb", linewidth=0.8, linestyle="--", label="y = x")
        ax.axhline(0, color="#dddddd", linewidth=0.6)
        ax.axvline(0, color="#dddddd", linewidth=0.6)
        for group in panel.groups:
            if group.points:
                ax.scatter([p[0] for p in group.points], [p[1] for p in group.points], s=16, color=group.colour,
                           marker=group.marker, alpha=0.85, linewidths=0, label=group.label)
        if len(points) >= 2 and np.ptp(x) > 0:
            slope, intercept = np.polyfit(x, y, 1)
            ax.plot([lo, hi], [intercept + slope * lo, intercept + slope * hi], color="#000000", linewidth=1.2,
                    label="least-squares fit")
        lines = [f"{name} = {value:.2f}{_ci(ci)}" for name, value, ci in panel.stats if value is not None]
        lines.append(f"n = {panel.n if panel.n is not None else len(points)}")
        ax.text(0.03, 0.97, "\n".join(lines), transform=ax.transAxes, va="top", fontsize=8,
                bbox={"facecolor": "white", "edgecolor": "#cccccc", "boxstyle": "round,pad=0.3"})
        ax.set_xlim(lo, hi)  # scaled to the points (the same scale on both axes, so y = x stays the diagonal)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        ax.set_title(wrap(panel.title, 40), loc="left")
        ax.set_xlabel(panel.xlabel)
        ax.set_ylabel(panel.ylabel)
        alt.append(f"{panel.title}: " + "; ".join(lines) + ".")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper left", ncols=3, frameon=False)
    return to_svg(fig, chart.id, chart.title, " ".join(alt))


# --- Grouped bars ----------------------------------------------------------------------------------------


@styled
def grouped_bars(chart: GroupedBars) -> Chart:
    """One bar per series in each group, the groups along the x axis, a dashed reference line."""
    n, k = len(chart.groups), len(chart.series)
    fig = figure(max(6.5, 1.4 + 1.0 * n), 3.8)
    ax = fig.subplots()
    xs = np.arange(n)
    width = 0.8 / max(k, 1)
    for j, series in enumerate(chart.series):
        heights = [np.nan if v is None else v for v in series.values]
        ax.bar(xs + (j - (k - 1) / 2) * width, heights, width=width, color=series.colour, hatch=series.hatch,
               edgecolor="#333333", linewidth=0.4, label=series.label)
    alt = [chart.description]
    for i, group in enumerate(chart.groups):
        alt.append(f"{group}: " + "; ".join(f"{s.label} {_n(s.values[i])}" for s in chart.series) + ".")
    if chart.reference is not None:
        ax.axhline(chart.reference[0], color="#666666", linewidth=0.8, linestyle="--", label=chart.reference[1])
    ax.set_ylim(*chart.ylim)
    ax.set_ylabel(chart.ylabel)
    ax.set_xticks(xs, [wrap(g, 18) for g in chart.groups], rotation=30 if n > 4 else 0, ha="right" if n > 4 else "center")
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    fig.legend(loc="outside upper left", ncols=k + (chart.reference is not None), frameon=False)
    return to_svg(fig, chart.id, chart.title, " ".join(alt))
