"""The report's per-occupation charts (inline SVG): O-SB per occupation, the transfer scatter, RPA by type x stance.

The metrics plotted are those of Mackraz et al. (2024): O-SB per occupation (positive = picked more
often with a male pronoun), RPA by type x stance, and the intrinsic-extrinsic transfer correlation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from matplotlib.colors import LinearSegmentedColormap

from .format import fmt_ci, fmt_num
from .svg import FEMALE, MALE, PALETTE, Chart, chunks, figure, styled, to_svg, wrap


def _n(value, digits: int = 2) -> str:
    return fmt_num(value, digits, missing="n/a")


def _ci(ci) -> str:
    text = fmt_ci(ci, 2, missing="")
    return f" {text}" if text else ""


# --- O-SB per occupation -------------------------------------------------------------------------------


def _extremes(o_sb: Mapping[str, float | None]) -> str:
    known = {k: v for k, v in o_sb.items() if v is not None}
    if not known:
        return "no occupation measurable"
    male = max(known, key=known.__getitem__)
    female = min(known, key=known.__getitem__)
    return f"most male-leaning {male} ({known[male]:+.2f}), most female-leaning {female} ({known[female]:+.2f})"


@styled
def osb_charts(
    chart_id: str,
    model: str,
    occupations: Sequence[tuple[str, float]],
    intrinsic: Mapping[str, float | None] | None,
    conditions: Sequence[tuple[str, Mapping[str, float | None]]],
    per_figure: int = 30,
) -> list[Chart]:
    """O-SB of every occupation (rows) under every condition (columns) as a heatmap, intrinsic first.

    ``occupations`` are (name, share of women in %) in the order to show, top to bottom. Blue is
    male-leaning (O-SB > 0), vermilion female-leaning; grey cells were not measurable. One compact
    chart replaces a bar panel per condition: at study scale (25 conditions) it is the difference
    between one figure and nine.
    """
    names = [name for name, _ in occupations]
    if not names:  # no occupations (BBQ): no chart, and no empty axes with identical limits
        return []
    columns = ([("intrinsic", intrinsic)] if intrinsic is not None else []) + [
        (c, o) for c, o in conditions if not (intrinsic is not None and c == "intrinsic")]
    cmap = LinearSegmentedColormap.from_list("osb", [FEMALE, "#f7f7f7", MALE]).with_extremes(bad="#c8c8c8")
    labels = [f"{name} ({pct:g}%)" for name, pct in occupations]
    charts = []
    for k, chunk in enumerate(chunks(columns, per_figure)):
        grid = np.ma.masked_invalid(np.array([[np.nan if o.get(n) is None else o[n] for _, o in chunk] for n in names],
                                             dtype=float).reshape(len(names), len(chunk)))
        label_width = 0.45 + 0.062 * max((len(label) for label in labels), default=10)
        top = 0.3 + 0.056 * max((len(c) for c, _ in chunk), default=8)
        width, height = label_width + 1.3 + 0.3 * len(chunk), top + 0.45 + 0.16 * len(names)
        fig = Figure(figsize=(width, height))  # fixed margins: constrained layout would double the drawing time
        fig.subplots_adjust(left=label_width / width, right=1 - 1.2 / width, top=1 - top / height, bottom=0.35 / height)
        ax = fig.subplots()
        mesh = ax.pcolormesh(grid, cmap=cmap, vmin=-1, vmax=1, edgecolors="white", linewidth=0.4)
        parity = next((i for i, (_, pct) in enumerate(occupations) if pct >= 50), None)
        if parity:
            ax.axhline(parity, color="#333333", linewidth=0.9, linestyle="--")
        ax.set_yticks(np.arange(len(names)) + 0.5, labels, fontsize=8)
        ax.set_xticks(np.arange(len(chunk)) + 0.5, [c for c, _ in chunk], rotation=90, fontsize=8)
        ax.xaxis.tick_top()
        ax.set_ylim(len(names), 0)  # first occupation on top
        ax.tick_params(length=0)
        for side in ("left", "bottom", "top", "right"):
            ax.spines[side].set_visible(False)
        bar = fig.colorbar(mesh, ax=ax, fraction=0.9 / len(chunk), pad=0.25 / width, ticks=[-1, -0.5, 0, 0.5, 1],
                           boundaries=np.linspace(-1, 1, 21))  # 20 steps: vector quads, not a raster image
        bar.set_label("O-SB  (female-leaning < 0 < male-leaning)")
        bar.ax.tick_params(labelsize=8)
        listed = ", ".join(c for c, _ in chunk)
        title = f"O-SB per occupation and condition, {model}"
        alt = [f"Heatmap of occupational selection bias (O-SB) for {len(names)} occupations (rows, from the lowest to "
               f"the highest share of women; dashed line: 50% women) under {len(chunk)} conditions (columns: {listed}), "
               f"model {model}; blue is male-leaning, vermilion female-leaning."]
        alt += [f"{c}: {_extremes(o)}." for c, o in chunk]
        charts.append(to_svg(fig, f"{chart_id}-{k}", title, " ".join(alt)))
    return charts


# --- Transfer scatter ----------------------------------------------------------------------------------


def _data_limits(x: np.ndarray, y: np.ndarray, *, bound: float = 1.0, min_span: float = 0.2) -> tuple[float, float]:
    """Equal axis limits that hold every point with a margin, never wider than O-SB's range [-1, 1]."""
    values = np.concatenate([x, y, [0.0]])  # zero in view: which side of it a point lies is the finding
    lo, hi = float(values.min()), float(values.max())
    span = max(hi - lo, min_span)
    mid = (lo + hi) / 2
    lo, hi = mid - span / 2 * 1.12, mid + span / 2 * 1.12
    return max(lo, -bound - 0.05), min(hi, bound + 0.05)


@dataclass(frozen=True)
class TransferPanel:
    condition: str
    extrinsic: Mapping[str, float | None]
    stats: Mapping[str, object] | None  # the record's transfer entry: pearson, pearson_ci, spearman, ...


@styled
def transfer_charts(
    chart_id: str,
    model: str,
    intrinsic: Mapping[str, float | None],
    stereotypes: Mapping[str, str],
    panels: Sequence[TransferPanel],
    per_figure: int = 3,
) -> list[Chart]:
    """Intrinsic vs extrinsic O-SB over occupations, one panel per condition, with the least-squares line."""
    charts = []
    for k, chunk in enumerate(chunks(list(panels), per_figure)):
        fig = figure(0.4 + 3.2 * len(chunk), 3.9)
        axes = fig.subplots(1, len(chunk), squeeze=False)[0]
        alt = [f"Scatter plots of intrinsic O-SB (x) against extrinsic O-SB (y) per occupation, model {model}, "
               "with the least-squares line and the diagonal y = x."]
        for ax, panel in zip(axes, chunk):
            names = [n for n in intrinsic if intrinsic[n] is not None and panel.extrinsic.get(n) is not None]
            x = np.array([intrinsic[n] for n in names], dtype=float)
            y = np.array([panel.extrinsic[n] for n in names], dtype=float)
            lo, hi = _data_limits(x, y)
            ax.plot([lo, hi], [lo, hi], color="#bbbbbb", linewidth=0.8, linestyle="--", label="y = x")
            ax.axhline(0, color="#dddddd", linewidth=0.6)
            ax.axvline(0, color="#dddddd", linewidth=0.6)
            for gender, colour, marker in (("male", MALE, "s"), ("female", FEMALE, "o")):
                mask = np.array([stereotypes.get(n) == gender for n in names], dtype=bool)
                if mask.any():
                    ax.scatter(x[mask], y[mask], s=16, color=colour, marker=marker, alpha=0.85, linewidths=0,
                               label=f"{gender}-stereotyped")
            if len(names) >= 2 and np.ptp(x) > 0:
                slope, intercept = np.polyfit(x, y, 1)
                ax.plot([lo, hi], [intercept + slope * lo, intercept + slope * hi], color="#000000", linewidth=1.2,
                        label="least-squares fit")
            stats = panel.stats or {}
            lines = []
            if stats.get("pearson") is not None:
                lines.append(f"Pearson r = {stats['pearson']:.2f}{_ci(stats.get('pearson_ci'))}")
            if stats.get("spearman") is not None:
                lines.append(f"Spearman \u03c1 = {stats['spearman']:.2f}{_ci(stats.get('spearman_ci'))}")
            lines.append(f"n = {stats.get('n', len(names))}")
            ax.text(0.03, 0.97, "\n".join(lines), transform=ax.transAxes, va="top", fontsize=8,
                    bbox={"facecolor": "white", "edgecolor": "#cccccc", "boxstyle": "round,pad=0.3"})
            ax.set_xlim(lo, hi)  # scaled to the points (the same scale on both axes, so y = x stays the diagonal)
            ax.set_ylim(lo, hi)
            ax.set_aspect("equal")
            ax.set_title(wrap(panel.condition, 40), loc="left")
            ax.set_xlabel("intrinsic O-SB")
            ax.set_ylabel(f"O-SB under {panel.condition}" if len(panel.condition) <= 24 else "extrinsic O-SB")
            alt.append(f"{panel.condition}: " + "; ".join(lines) + ".")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside upper left", ncols=3, frameon=False)
        title = f"Bias transfer, {model}: intrinsic vs " + ", ".join(p.condition for p in chunk)
        charts.append(to_svg(fig, f"{chart_id}-{k}", title, " ".join(alt)))
    return charts


# --- RPA by type x stance ------------------------------------------------------------------------------


@styled
def rpa_chart(chart_id: str, model: str, conditions: Sequence[tuple[str, Mapping]]) -> Chart:
    """Accuracy per condition for type 1 / type 2 x pro / anti (WinoBias's four blocks)."""
    series = [("1", "pro", PALETTE[0], None), ("1", "anti", "#9cc3e0", "///"),
              ("2", "pro", PALETTE[1], None), ("2", "anti", "#f5d28a", "///")]
    n = len(conditions)
    fig = figure(max(6.5, 1.4 + 1.0 * n), 3.8)
    ax = fig.subplots()
    xs = np.arange(n)
    width = 0.2
    alt = [f"Grouped bar chart of accuracy by WinoBias type and stance per condition, model {model}."]
    for j, (type_, stance, colour, hatch) in enumerate(series):
        heights = []
        for _, rpa in conditions:
            value = (rpa.get("by_type") or {}).get(type_, {}).get(stance)
            heights.append(np.nan if value is None else value)
        ax.bar(xs + (j - 1.5) * width, heights, width=width, color=colour, hatch=hatch, edgecolor="#333333",
               linewidth=0.4, label=f"type {type_}, {stance}")
    for cond, rpa in conditions:
        by_type = rpa.get("by_type") or {}
        parts = [f"type {t} pro {_n(by_type.get(t, {}).get('pro'))} anti {_n(by_type.get(t, {}).get('anti'))}"
                 for t in ("1", "2")]
        alt.append(f"{cond}: " + ", ".join(parts) + ".")
    ax.axhline(0.5, color="#666666", linewidth=0.8, linestyle="--", label="chance (0.5)")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy")
    ax.set_xticks(xs, [wrap(c, 18) for c, _ in conditions], rotation=30 if n > 4 else 0, ha="right" if n > 4 else "center")
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    fig.legend(loc="outside upper left", ncols=5, frameon=False)
    return to_svg(fig, chart_id, f"Accuracy by type and stance, {model}", " ".join(alt))
