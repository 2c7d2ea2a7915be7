"""The HTML audit report: a view over results.json (``render``), its charts (``charts``) and the
terminal / GitHub step-summary tables (``tables``)."""

from audit.report.render import load_results, render_report, report_context, write_report

__all__ = ["load_results", "render_report", "report_context", "write_report"]
