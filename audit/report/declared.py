"""Drawing the charts a dataset declares in its report view (``audit.datasets.base.EstimatesChart``).

A dataset names what to plot as plain numbers; this module turns each declaration into an inline SVG
forest plot (:mod:`.forest`), so dataset packages need no plotting code and no import of the report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from audit.datasets.base import EstimatesChart

from . import forest


def _estimate(value: Any) -> forest.Estimate:
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        return forest.Estimate(None)
    est, lo, hi = (None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in value)
    return forest.Estimate(est, (lo, hi) if lo is not None and hi is not None else None)


def draw(chart: EstimatesChart) -> forest.Chart:
    panels = []
    for panel in chart.panels:
        series = [(str(name), {str(row): _estimate(v) for row, v in values.items()})
                  for name, values in (panel.get("series") or {}).items()]
        ref = panel.get("reference")
        refs = [forest.Reference(float(ref[0]), str(ref[1]), ":", "#777777")] if ref else []
        xlim = tuple(panel["xlim"]) if panel.get("xlim") else None
        panels.append(forest.ForestPanel(str(panel.get("label", "")), series, refs, None, xlim))
    return forest.forest_chart(chart.id, chart.title, list(chart.rows), panels,
                               row_noun=chart.row_noun, series_noun=chart.series_noun)


def draw_declared(view: Any) -> Any:
    """``view`` with every ``EstimatesChart`` in it (in dicts and lists, at any depth) drawn."""
    if isinstance(view, EstimatesChart):
        drawn = draw(view)
        return {"id": drawn.id, "title": drawn.title, "svg": drawn.svg, "caption": view.caption}
    if isinstance(view, Mapping):
        return {k: draw_declared(v) for k, v in view.items()}
    if isinstance(view, (list, tuple)):
        return [draw_declared(v) for v in view]
    return view
