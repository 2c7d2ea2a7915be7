"""Inline SVG for the report's charts: matplotlib figures rendered without scripts, fonts or links.

Every chart is a :class:`Chart`: the ``<svg>`` markup, ready to be placed in an HTML page, with a
``<title>`` and a ``<desc>`` (its alt text) that the SVG references through ``aria-labelledby``.
Text from the data (model and condition names) reaches the SVG only through matplotlib's XML
writer, which escapes ``<``, ``>`` and ``&``; mathtext is off, so a ``$`` in a name is just a ``$``.
The element ids of each SVG are prefixed with the chart's own id, so that many charts can share one
HTML page without clashing.
"""

from __future__ import annotations

import functools
import io
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import matplotlib
from markupsafe import Markup, escape
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

# Okabe & Ito's colour-blind-safe palette; distinct in lightness too, so it survives grey printing.
INTRINSIC = "#9a9a9a"
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
MARKERS = ("o", "s", "D", "^", "v", "P", "X", "h")

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


def to_svg(fig: Figure, chart_id: str, title: str, alt: str) -> Chart:
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


def styled(draw: Callable[..., T]) -> Callable[..., T]:
    """Build the whole figure under the report's style (rcParams are read when artists are created)."""

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(_RC):
            return draw(*args, **kwargs)

    return wrapper


def figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def wrap(text: str, width: int = 34) -> str:
    return "\n".join(textwrap.wrap(text, width, break_long_words=True)) or text


def chunks(seq: Sequence, size: int) -> list[Sequence]:
    return [seq[i:i + size] for i in range(0, len(seq), size)]
