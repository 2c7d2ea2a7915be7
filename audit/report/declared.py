"""Drawing the charts a dataset declares in its report view (``audit.datasets.report_charts``).

A dataset names what to plot as plain numbers and text; this module turns each declaration into an
inline SVG chart (:mod:`.forest`, :mod:`.charts`), so dataset packages need no plotting code and no
import of the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from audit.datasets.report_charts import DECLARED_CHARTS, DotPlot, EstimatesChart, GroupedBars, Heatmap, Scatter

from . import charts, forest


def _forest(chart: EstimatesChart) -> forest.Chart:
    panels = []
    for panel in chart.panels:
        bounds = tuple(panel["range"]) if panel.get("range") else None
        series = [(str(name), {str(row): forest.declared_estimate(v, bounds) for row, v in values.items()})
                  for name, values in (panel.get("series") or {}).items()]
        ref = panel.get("reference")
        refs = [forest.Reference(float(ref[0]), str(ref[1]), ":", "#777777")] if ref else []
        refs += [forest.Reference(float(x), str(label), style, colour) for x, label, style, colour in panel.get("references") or ()]
        bands = {(str(name), str(row)): (float(lo), float(hi)) for name, rows in (panel.get("bands") or {}).items()
                 for row, (lo, hi) in rows.items()} or None
        xlim = tuple(panel["xlim"]) if panel.get("xlim") else None
        clamp = tuple(panel["clamp"]) if panel.get("clamp") else None
        panels.append(forest.ForestPanel(str(panel.get("label", "")), series, refs, bands, xlim, clamp))
    return forest.forest_chart(chart.id, chart.title, list(chart.rows), panels,
                               row_noun=chart.row_noun, series_noun=chart.series_noun)


_DRAW = {EstimatesChart: _forest, DotPlot: forest.dot_plot, Heatmap: charts.heatmap, Scatter: charts.scatter,
         GroupedBars: charts.grouped_bars}


def draw(chart: Any) -> forest.Chart:
    """The drawn chart of one declaration (any kind of ``audit.datasets.report_charts``)."""
    return _DRAW[type(chart)](chart)


def draw_declared(view: Any) -> Any:
    """``view`` with every declared chart in it (in dicts and lists, at any depth) drawn: each becomes
    ``{"id", "title", "svg", "caption"}``."""
    if isinstance(view, DECLARED_CHARTS):
        drawn = draw(view)
        return {"id": drawn.id, "title": drawn.title, "svg": drawn.svg, "caption": getattr(view, "caption", "")}
    if isinstance(view, Mapping):
        return {k: draw_declared(v) for k, v in view.items()}
    if isinstance(view, (list, tuple)):
        return [draw_declared(v) for v in view]
    return view
