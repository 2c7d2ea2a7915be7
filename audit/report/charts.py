"""The report's per-occupation charts (inline SVG): O-SB per occupation, the transfer scatter, RPA by type x stance.

The metrics plotted are those of Mackraz et al. (2024): O-SB per occupation (positive = picked more
often with a male pronoun), RPA by type x stance, and the intrinsic-extrinsic transfer correlation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .format import fmt_ci, fmt_num
from .svg import FEMALE, INTRINSIC, MALE, PALETTE, Chart, chunks, figure, styled, to_svg, wrap


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
    per_figure: int = 3,
) -> list[Chart]:
    """O-SB of every occupation, intrinsic (grey) beside each condition, ``per_figure`` panels a chart.

    ``occupations`` are (name, share of women in %) in the order to show, top to bottom.
    """
    names = [name for name, _ in occupations]
    rows = np.arange(len(names))
    charts = []
    for k, chunk in enumerate(chunks(list(conditions), per_figure)):
        labels = [f"{name} ({pct:g}%)" for name, pct in occupations]
        label_width = 0.45 + 0.062 * max((len(label) for label in labels), default=10)  # inches at 8 pt
        width, height = label_width + 0.15 + 2.7 * len(chunk), 1.35 + 0.16 * len(names)
        fig = Figure(figsize=(width, height))  # fixed margins: constrained layout would double the drawing time
        fig.subplots_adjust(left=label_width / width, right=1 - 0.15 / width, top=1 - 0.75 / height, bottom=0.5 / height,
                            wspace=0.1)
        axes = fig.subplots(1, len(chunk), sharey=True, squeeze=False)[0]
        for ax, (cond, o_sb) in zip(axes, chunk):
            values = [o_sb.get(n) for n in names]
            cond_bars = np.array([np.nan if v is None else v for v in values])
            if intrinsic is not None and cond != "intrinsic":
                base = np.array([np.nan if intrinsic.get(n) is None else intrinsic[n] for n in names])
                ax.barh(rows - 0.2, base, height=0.4, color=INTRINSIC, label="intrinsic")
                ax.barh(rows + 0.2, cond_bars, height=0.4, color=PALETTE[0], label="condition")
            else:
                ax.barh(rows, cond_bars, height=0.6, color=PALETTE[0], label="condition")
            for row, value in zip(rows, values):
                if value is None:
                    ax.text(0.02, row, "not measurable", va="center", fontsize=7, color="#555555")
            ax.axvline(0, color="#333333", linewidth=0.8)
            parity = next((i for i, (_, pct) in enumerate(occupations) if pct >= 50), None)
            if parity is not None and parity > 0:
                ax.axhline(parity - 0.5, color="#666666", linewidth=0.7, linestyle="--")
            ax.set_xlim(-1.05, 1.05)
            ax.set_xticks([-1, -0.5, 0, 0.5, 1])
            ax.grid(axis="x", color="#dddddd", linewidth=0.6)
            ax.set_axisbelow(True)
            ax.set_title(wrap(cond), loc="left")
            ax.set_xlabel("O-SB  (female-leaning < 0 < male-leaning)")
        axes[0].set_yticks(rows, labels)
        axes[0].tick_params(axis="y", labelsize=8)
        axes[0].set_ylabel("occupation (share of women)")
        axes[0].set_ylim(len(names) - 0.5, -0.5)  # first occupation on top
        handles = [Patch(color=INTRINSIC, label="intrinsic (bare cloze)"),
                   Patch(color=PALETTE[0], label="condition named above the panel")]
        fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.1 / width, 1 - 0.05 / height), ncols=2,
                   frameon=False)
        listed = ", ".join(c for c, _ in chunk)
        title = f"O-SB per occupation, {model}: intrinsic beside {listed}"
        alt_parts = [
            f"Horizontal bar charts of occupational selection bias (O-SB) for {len(names)} occupations, ordered from "
            f"the lowest to the highest share of women (dashed line: 50% women), model {model}."
        ]
        if intrinsic is not None:
            alt_parts.append(f"Intrinsic: {_extremes(intrinsic)}.")
        alt_parts += [f"{c}: {_extremes(o)}." for c, o in chunk]
        charts.append(to_svg(fig, f"{chart_id}-{k}", title, " ".join(alt_parts)))
    return charts


# --- Transfer scatter ----------------------------------------------------------------------------------


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
            ax.plot([-1, 1], [-1, 1], color="#bbbbbb", linewidth=0.8, linestyle="--", label="y = x")
            ax.axhline(0, color="#dddddd", linewidth=0.6)
            ax.axvline(0, color="#dddddd", linewidth=0.6)
            for gender, colour, marker in (("male", MALE, "s"), ("female", FEMALE, "o")):
                mask = np.array([stereotypes.get(n) == gender for n in names], dtype=bool)
                if mask.any():
                    ax.scatter(x[mask], y[mask], s=16, color=colour, marker=marker, alpha=0.85, linewidths=0,
                               label=f"{gender}-stereotyped")
            if len(names) >= 2 and np.ptp(x) > 0:
                slope, intercept = np.polyfit(x, y, 1)
                ax.plot([-1, 1], [intercept - slope, intercept + slope], color="#000000", linewidth=1.2,
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
            ax.set_xlim(-1.05, 1.05)
            ax.set_ylim(-1.05, 1.05)
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
