"""The report's charts: matplotlib figures rendered to inline SVG (no scripts, fonts or links).

Every chart is a :class:`Chart`: the ``<svg>`` markup, ready to be placed in an HTML page, with a
``<title>`` and a ``<desc>`` (its alt text) that the SVG references through ``aria-labelledby``.
Text from the data (model and condition names) reaches the SVG only through matplotlib's XML
writer, which escapes ``<``, ``>`` and ``&``; mathtext is off, so a ``$`` in a name is just a ``$``.
The element ids of each SVG are prefixed with the chart's own id, so that many charts can share one
HTML page without clashing.

The metrics plotted are those of Mackraz et al. (2024): O-SB per occupation (positive = picked more
often with a male pronoun), A-SB (mean |O-SB|), RPA by type x stance, and the intrinsic-extrinsic
transfer correlation.
"""

from __future__ import annotations

import functools
import io
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import matplotlib
import numpy as np
from markupsafe import Markup, escape
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.patches import Patch

# Okabe & Ito's colour-blind-safe palette; distinct in lightness too, so it survives grey printing.
INTRINSIC = "#9a9a9a"
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
MARKERS = ("o", "s", "D", "^", "v", "P", "X", "h")
MALE, FEMALE = "#0072B2", "#D55E00"

_RC = {
    "svg.fonttype": "none",  # text stays text: searchable, small, escaped by the XML writer
    "text.parse_math": False,  # a '$' in a model name must not start mathtext
    "text.usetex": False,
    "font.size": 10,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.unicode_minus": True,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
}
T = TypeVar("T")
_SVG_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}  # no <metadata>, no timestamps


@dataclass(frozen=True)
class Chart:
    """An inline SVG chart. ``alt`` is its text alternative (also inside the SVG as ``<desc>``)."""

    id: str
    title: str
    alt: str
    svg: Markup


def _tag_rewriter(prefix: str, referenced: set[str]):
    """Tidy one SVG tag: ids prefixed (or dropped when nothing refers to them), shorter numbers, no font lists."""

    def rewrite(match: re.Match) -> str:
        tag = re.sub(r"\s*\n\s*", " ", match.group(0))  # path data is written one command a line
        tag = re.sub(r' id="([^"]+)"', lambda m: f' id="{prefix}-{m.group(1)}"' if m.group(1) in referenced else "", tag)
        tag = tag.replace('xlink:href="#', f'xlink:href="#{prefix}-').replace("url(#", f"url(#{prefix}-")
        tag = re.sub(r' transform="rotate\(-?0 [^"]*\)"', "", tag)  # unrotated text
        tag = re.sub(r"(\d\.\d\d)\d+", r"\1", tag)  # 1/100 pt is finer than any screen or printer
        return re.sub(r"font-family: [^;\"]*;? ?", "", tag)  # the page's CSS sets one font for all charts

    return rewrite


def _to_svg(fig: Figure, chart_id: str, title: str, alt: str) -> Chart:
    """Render ``fig`` to an accessible, self-contained ``<svg>`` element."""
    buffer = io.StringIO()
    FigureCanvasSVG(fig)
    with matplotlib.rc_context({**_RC, "svg.hashsalt": chart_id}):
        fig.savefig(buffer, format="svg", metadata=_SVG_METADATA)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]  # drop the XML prolog and DOCTYPE: not allowed inside HTML
    svg = re.sub(r"<defs>\s*<style[^>]*>[^<]*</style>\s*</defs>", "", svg, count=1)  # global '*' rule; CSS has it
    # Rewrite tags only: in text content matplotlib has escaped every '<', so no data can match a tag.
    tags = re.findall(r"<[^>]+>", svg)
    referenced = {ref for tag in tags for ref in re.findall(r'(?:href="#|url\(#)([^")]+)', tag)}
    svg = re.sub(r"<[^>]+>", _tag_rewriter(chart_id, referenced), svg)
    svg = re.sub(r">\s+<", "><", svg)  # indentation between elements
    while True:  # a group with no attributes around a single element is just that element
        unwrapped = re.sub(r"<g>(<[^<>]*/>|<text[^<>]*>[^<]*</text>)</g>", r"\1", svg)
        if unwrapped == svg:
            break
        svg = unwrapped
    match = re.match(r'<svg[^>]*?width="([\d.]+)pt" height="([\d.]+)pt"', svg)
    assert match, "unexpected SVG header from matplotlib"
    width_px = round(float(match.group(1)) * 4 / 3)
    head = (
        f'<svg class="chart" role="img" aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f'style="max-width: {width_px}px"'
    )
    svg = re.sub(r'^<svg[^>]*?width="[\d.]+pt" height="[\d.]+pt"', head, svg, count=1)
    root_end = svg.index(">") + 1
    labels = f'<title id="{chart_id}-title">{escape(title)}</title><desc id="{chart_id}-desc">{escape(alt)}</desc>'
    return Chart(chart_id, title, alt, Markup(svg[:root_end] + labels + svg[root_end:]))


def _styled(draw: Callable[..., T]) -> Callable[..., T]:
    """Build the whole figure under the report's style (rcParams are read when artists are created)."""

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(_RC):
            return draw(*args, **kwargs)

    return wrapper


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _wrap(text: str, width: int = 34) -> str:
    return "\n".join(textwrap.wrap(text, width, break_long_words=True)) or text


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _chunks(seq: Sequence, size: int) -> list[Sequence]:
    return [seq[i:i + size] for i in range(0, len(seq), size)]


# --- O-SB per occupation -------------------------------------------------------------------------------


def _extremes(o_sb: Mapping[str, float | None]) -> str:
    known = {k: v for k, v in o_sb.items() if v is not None}
    if not known:
        return "no occupation measurable"
    male = max(known, key=known.__getitem__)
    female = min(known, key=known.__getitem__)
    return f"most male-leaning {male} ({known[male]:+.2f}), most female-leaning {female} ({known[female]:+.2f})"


@_styled
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
    for k, chunk in enumerate(_chunks(list(conditions), per_figure)):
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
            ax.set_title(_wrap(cond), loc="left")
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
        charts.append(_to_svg(fig, f"{chart_id}-{k}", title, " ".join(alt_parts)))
    return charts


# --- Transfer scatter ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransferPanel:
    condition: str
    extrinsic: Mapping[str, float | None]
    stats: Mapping[str, object] | None  # the record's transfer entry: pearson, pearson_ci, spearman, ...


def _interval(ci: object) -> str:
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and None not in ci:
        return f" [{ci[0]:.2f}, {ci[1]:.2f}]"
    return ""


@_styled
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
    for k, chunk in enumerate(_chunks(list(panels), per_figure)):
        fig = _figure(0.4 + 3.2 * len(chunk), 3.9)
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
                lines.append(f"Pearson r = {stats['pearson']:.2f}{_interval(stats.get('pearson_ci'))}")
            if stats.get("spearman") is not None:
                lines.append(f"Spearman \u03c1 = {stats['spearman']:.2f}{_interval(stats.get('spearman_ci'))}")
            lines.append(f"n = {stats.get('n', len(names))}")
            ax.text(0.03, 0.97, "\n".join(lines), transform=ax.transAxes, va="top", fontsize=8,
                    bbox={"facecolor": "white", "edgecolor": "#cccccc", "boxstyle": "round,pad=0.3"})
            ax.set_xlim(-1.05, 1.05)
            ax.set_ylim(-1.05, 1.05)
            ax.set_aspect("equal")
            ax.set_title(_wrap(panel.condition, 40), loc="left")
            ax.set_xlabel("intrinsic O-SB")
            ax.set_ylabel(f"O-SB under {panel.condition}" if len(panel.condition) <= 24 else "extrinsic O-SB")
            alt.append(f"{panel.condition}: " + "; ".join(lines) + ".")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside upper left", ncols=3, frameon=False)
        title = f"Bias transfer, {model}: intrinsic vs " + ", ".join(p.condition for p in chunk)
        charts.append(_to_svg(fig, f"{chart_id}-{k}", title, " ".join(alt)))
    return charts


# --- RPA by type x stance ------------------------------------------------------------------------------


@_styled
def rpa_chart(chart_id: str, model: str, conditions: Sequence[tuple[str, Mapping]]) -> Chart:
    """Accuracy per condition for type 1 / type 2 x pro / anti (WinoBias's four blocks)."""
    series = [("1", "pro", PALETTE[0], None), ("1", "anti", "#9cc3e0", "///"),
              ("2", "pro", PALETTE[1], None), ("2", "anti", "#f5d28a", "///")]
    n = len(conditions)
    fig = _figure(max(6.5, 1.4 + 1.0 * n), 3.8)
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
        parts = [f"type {t} pro {_fmt(by_type.get(t, {}).get('pro'))} anti {_fmt(by_type.get(t, {}).get('anti'))}"
                 for t in ("1", "2")]
        alt.append(f"{cond}: " + ", ".join(parts) + ".")
    ax.axhline(0.5, color="#666666", linewidth=0.8, linestyle="--", label="chance (0.5)")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy")
    ax.set_xticks(xs, [_wrap(c, 18) for c, _ in conditions], rotation=30 if n > 4 else 0, ha="right" if n > 4 else "center")
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    fig.legend(loc="outside upper left", ncols=5, frameon=False)
    return _to_svg(fig, chart_id, f"Accuracy by type and stance, {model}", " ".join(alt))


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
    text = _fmt(e.value)
    if e.ci is not None and e.value is not None:
        text += f" [{e.ci[0]:.2f}, {e.ci[1]:.2f}]"
    if e.sd is not None:
        text += f" (seed sd {e.sd:.3f})"
    return text


@_styled
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
    fig = _figure(9.5, 1.5 + 0.55 * n)
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
        ax.set_xlim(-0.05 if col == 0 else min(-0.05, ax.get_xlim()[0]), max(1.0, ax.get_xlim()[1]))
        ax.set_xlabel(metric)
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
    axes[0].set_yticks(ys, [label for label, _, _ in rows])
    axes[0].set_ylim(n - 0.5, -0.5)
    for label, a_sb, gap in rows:
        alt.append(f"{label}: A-SB {_estimate_text(a_sb)}, RPA gap {_estimate_text(gap)}.")
    for ref, (a_sb, gap) in references.items():
        alt.append(f"Reference {ref}: A-SB {_fmt(a_sb)}, RPA gap {_fmt(gap)}.")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper left", ncols=3, frameon=False)
    return _to_svg(fig, chart_id, f"Few-shot composition effects, {model}", " ".join(alt))


@_styled
def models_chart(
    chart_id: str,
    conditions: Sequence[str],
    models: Sequence[tuple[str, Mapping[str, tuple[Estimate, Estimate]]]],
) -> Chart:
    """A-SB and RPA gap per condition, one colour and marker per model, side by side."""
    n = len(conditions)
    m = len(models)
    fig = _figure(9.5, 1.5 + 0.24 * n * max(m, 2))
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
    axes[0].set_yticks(ys, [_wrap(c, 28) for c in conditions])
    axes[0].set_ylim(n - 0.5, -0.5)
    for model, values in models:
        parts = [f"{c} A-SB {_fmt(values[c][0].value)}, gap {_fmt(values[c][1].value)}" for c in conditions if c in values]
        alt.append(f"{model}: " + "; ".join(parts) + ".")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper left", ncols=min(m, 4), frameon=False)
    return _to_svg(fig, chart_id, "Models side by side: A-SB and RPA gap per condition", " ".join(alt))
