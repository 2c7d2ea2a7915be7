"""Drawing the charts a dataset declares in its report view (``audit.datasets.report_charts``).

A dataset names what to plot as plain numbers and text; this module turns each declaration into an
inline SVG chart (:mod:`.forest`, :mod:`.charts`), so dataset packages need no plotting code and no
import of the report; the numbers its tables show (``audit.datasets.report_data`` parts) are written by
the report's register (:mod:`.written`), as the summary's are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from audit.datasets.report_charts import DECLARED_CHARTS, DotPlot, EstimatesChart, GroupedBars, Heatmap, Scatter

from audit.datasets.report_data import Estimate, Interval, Number, Percent, Quantity, Where

from . import charts, forest
from .quantities import Numbers
from .written import written

PARTS = (Quantity, Interval, Number, Estimate, Percent, Where)  # written by the register, not drawn


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


def draw_declared(view: Any, numbers: Numbers | None = None) -> Any:
    """``view`` with every declared chart in it (in dicts and lists, at any depth) drawn, each as
    ``{"id", "title", "svg", "caption"}``, and every number part (``audit.datasets.report_data``) written
    by the register ``numbers`` (a recorded quantity tagged with its label)."""
    if isinstance(view, DECLARED_CHARTS):
        drawn = draw(view)
        return {"id": drawn.id, "title": drawn.title, "svg": drawn.svg, "caption": getattr(view, "caption", "")}
    if isinstance(view, PARTS):
        if numbers is None:
            raise ValueError("a report view with numbers to write needs the register (numbers=)")
        return written([view], numbers)
    if isinstance(view, Mapping):
        return {k: draw_declared(v, numbers) for k, v in view.items()}
    if isinstance(view, (list, tuple)):
        return [draw_declared(v, numbers) for v in view]
    return view
