"""The charts a dataset's report sections declare (``Dataset.report_view``), as plain data.

A dataset package may not import ``audit.report`` (the import contracts), so it names what to plot
with these kinds and the report draws them (``audit.report.declared``): no plotting code in a dataset
package. Numbers are plain floats (None: not measured); an interval is ``(estimate, lo, hi)`` (lo/hi may
be None), with an optional fourth element, the spread over seeds. Text is plain: the report escapes it.

* :class:`EstimatesChart`: a forest plot, estimates with intervals, one row per category or condition;
* :class:`DotPlot`: estimates with intervals in panels side by side, at the dataset's row height;
* :class:`Heatmap`: a diverging heatmap (low values vermilion, high blue, None grey);
* :class:`Scatter`: one panel per condition of grouped points with a least-squares line and y = x;
* :class:`GroupedBars`: bars per group (e.g. a condition), one bar per series, with a reference line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class EstimatesChart:
    """A forest plot: one row per ``rows`` entry (e.g. a category), one panel per measure, one marker per
    series (e.g. a condition). ``panels`` are ``{"label": axis label, "series": {series: {row: (estimate,
    lo, hi)}}, "reference": (x, what it means) or None, "xlim": (lo, hi) or None}`` and optionally
    ``"references": ((x, label, line style, colour), ...)``, ``"bands": {series: {row: (lo, hi)}}`` (grey
    noise-floor bands), ``"range": (lo, hi)`` (intervals drawn inside the statistic's range) and
    ``"clamp": (lo, hi)`` (the data-scaled axis never beyond). The section's template shows the drawn
    chart's ``svg`` with ``caption``."""

    id: str
    title: str
    rows: tuple[str, ...]
    panels: tuple[Mapping[str, Any], ...]
    row_noun: str = "row"
    series_noun: str = "series"
    caption: str = ""


@dataclass(frozen=True)
class DotPlot:
    """Estimates with intervals, one row per ``rows`` entry (labels may hold line breaks), one panel per
    measure side by side, one colour and marker per series. ``panels`` are ``{"label": axis label, "name":
    the measure in the alt text, "series": {series: {row: (estimate, lo, hi[, seed sd])}}, "references":
    ((x, label, line style, colour), ...), "range": (lo, hi) or None, "clamp": bool}`` (``clamp``: the
    data-scaled axis stays inside ``range``). ``row_height`` in inches; ``wrap``: row labels wrapped at
    this width (None: as given). ``description`` opens the alt text; the report adds the numbers."""

    id: str
    title: str
    description: str
    rows: tuple[str, ...]
    panels: tuple[Mapping[str, Any], ...]
    row_height: float = 0.5
    wrap: int | None = 28


@dataclass(frozen=True)
class Heatmap:
    """``values[r][c]`` of row ``rows[r]`` and column ``columns[c]`` in ``limits`` (None: grey, not
    measurable), on a diverging scale (``limits[0]`` vermilion, the middle pale, ``limits[1]`` blue);
    ``divider``: a dashed line above this row (None or 0: none); ``scale_label`` names the colour bar.
    ``alt`` is the whole text alternative (a heatmap has too many numbers to list)."""

    id: str
    title: str
    alt: str
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    values: tuple[tuple[float | None, ...], ...]
    scale_label: str
    limits: tuple[float, float] = (-1.0, 1.0)
    divider: int | None = None


@dataclass(frozen=True)
class PointGroup:
    """Points drawn in one colour and marker, named in the legend: ``points`` are (x, y)."""

    label: str
    points: tuple[tuple[float, float], ...]
    colour: str
    marker: str = "o"


@dataclass(frozen=True)
class PointsPanel:
    """One panel: its groups of points (the least-squares line fits them all), and the statistics shown in
    its corner, ``(name, value, (lo, hi) or None)``, then ``n``."""

    title: str
    xlabel: str
    ylabel: str
    groups: tuple[PointGroup, ...]
    stats: tuple[tuple[str, float | None, Any], ...] = ()
    n: Any = None


@dataclass(frozen=True)
class Scatter:
    """Scatter panels side by side, equal axes scaled to the points (zero in view) inside ``limits`` (the
    statistic's range), each with the diagonal y = x and the least-squares line. ``description`` opens the
    alt text; the report adds each panel's statistics."""

    id: str
    title: str
    description: str
    panels: tuple[PointsPanel, ...]
    limits: tuple[float, float] = (-1.0, 1.0)


@dataclass(frozen=True)
class BarSeries:
    """One bar per group: ``values`` in the order of the chart's groups (None: no bar)."""

    label: str
    values: tuple[float | None, ...]
    colour: str
    hatch: str | None = None


@dataclass(frozen=True)
class GroupedBars:
    """Bars side by side per group (x axis), one per series, on ``ylim``, with a dashed horizontal
    ``reference`` line ``(y, label)``. ``description`` opens the alt text; the report adds the values."""

    id: str
    title: str
    description: str
    groups: tuple[str, ...]
    series: tuple[BarSeries, ...]
    ylabel: str
    ylim: tuple[float, float] = (0.0, 1.05)
    reference: tuple[float, str] | None = None


DECLARED_CHARTS = (EstimatesChart, DotPlot, Heatmap, Scatter, GroupedBars)
