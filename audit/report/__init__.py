"""The report stage: views of a results.json record (HTML page, PDF, terminal and Markdown tables).

Names are imported on first use, so that the light views (:mod:`.tables`) do not load matplotlib.
"""

import importlib
from typing import Any

_EXPORTS = {
    "check_results": "audit.results.io", "load_results": "audit.results.io",  # one reader of results.json
    "render_report": "render", "write_report": "render",
    "report_context": "view",
    "write_pdf": "pdf", "write_report_pdf": "pdf", "PdfEngineMissing": "pdf",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = _EXPORTS[name]
        return getattr(importlib.import_module(module if "." in module else f".{module}", __name__), name)
    raise AttributeError(f"module 'audit.report' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
