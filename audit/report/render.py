"""Rendering the report: the context from :mod:`.view` through the Jinja2 templates in ``templates/report/``.

The page needs no network, scripts or fonts: CSS is inline, charts are inline SVG, drill-down
tables are ``<details>`` elements. Everything that comes from models, data or configuration is
escaped (Jinja2 autoescaping; matplotlib's XML writer inside the charts), and a
Content-Security-Policy forbids scripts and every request, should anything slip through.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from audit.paths import templates_dir
from .format import breakable, fmt_ci, fmt_num, slug
from .view import report_context

TEMPLATE = "report/report.html.j2"
TEMPLATES = {"full": TEMPLATE, "executive": "report/executive.html.j2"}  # the page, and its two-page summary
MODES = tuple(TEMPLATES)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(templates_dir())),
        autoescape=select_autoescape(enabled_extensions=("html", "j2"), default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["slug"] = slug
    env.filters["breakable"] = breakable
    env.filters["num"] = fmt_num  # a dataset's section formats its own numbers through these
    env.filters["ci"] = fmt_ci
    return env


def render_report(results: Mapping, approved: Mapping | None = None, mode: str = "full") -> str:
    """The self-contained HTML report for a results record (schema 1.0), beside ``approved`` when given;
    ``mode`` "executive": the verdict, the summary and the gate outcomes only (two printed pages at most)."""
    context = report_context(results, approved)
    if mode == "executive":
        from .executive import executive_view

        context["executive"] = executive_view(context["gates"], context["model_names"])
    return _environment().get_template(TEMPLATES[mode]).render(**context)


def write_report(results: Mapping, out_path: str | Path, approved: Mapping | None = None, mode: str = "full") -> Path:
    """Render the report and write it to ``out_path`` (parent folders created); returns the path."""
    from audit.results.atomic import write_atomic

    # all or nothing, redacted; OutputError names the file
    return write_atomic(Path(out_path), render_report(results, approved, mode), what="report")
