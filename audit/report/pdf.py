"""The report as a PDF, printed by headless Chromium (``--print-to-pdf``) from the self-contained page.

Chromium prints what a reader's browser would: the page's print styles put the summary and the gate
matrix first, keep charts whole and leave collapsed item tables out. WeasyPrint was the other
candidate; it does not lay out the page's inline SVG charts as faithfully and pulls in a font stack,
while Chromium is already what the browser tests use. No engine: one line saying how to get one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from audit.errors import AuditError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-extensions", "--disable-sync",
         "--no-pdf-header-footer", "--run-all-compositor-stages-before-draw")
TIMEOUT_S = 180


class PdfEngineMissing(AuditError):
    """No Chromium to print with."""


def find_chromium() -> str | None:
    """``$BIAS_AUDIT_CHROMIUM``, else the first Chromium or Chrome on the PATH."""
    explicit = os.environ.get("BIAS_AUDIT_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return next((found for name in CANDIDATES if (found := shutil.which(name))), None)


def write_pdf(html_path: str | Path, pdf_path: str | Path) -> Path:
    """Print the report page ``html_path`` to ``pdf_path``; :class:`AuditError` with one line when it cannot."""
    chromium = find_chromium()
    if chromium is None:
        raise PdfEngineMissing("--pdf needs Chromium to print the report: install it (Debian/Ubuntu: apt-get install "
                               "chromium) or set BIAS_AUDIT_CHROMIUM to a Chromium or Chrome executable")
    html, out = Path(html_path).resolve(), Path(pdf_path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AuditError(f"--pdf '{out}': cannot create the folder ({exc.strerror or exc})") from None
    with tempfile.TemporaryDirectory(prefix="bias-audit-pdf-") as profile:
        target = Path(profile) / "report.pdf"
        command = [chromium, *FLAGS, f"--user-data-dir={profile}", f"--print-to-pdf={target}", html.as_uri()]
        try:
            done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise AuditError(f"--pdf: Chromium did not finish printing {html.name} within {TIMEOUT_S} s") from None
        except OSError as exc:
            raise AuditError(f"--pdf: cannot start {chromium} ({exc.strerror or exc})") from None
        if not target.is_file() or target.read_bytes()[:5] != b"%PDF-":
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise AuditError(f"--pdf: Chromium did not print {html.name} (exit {done.returncode}: {tail[0][:200]})")
        try:
            shutil.copyfile(target, out)
        except OSError as exc:
            raise AuditError(f"--pdf '{out}': cannot write the PDF ({exc.strerror or exc})") from None
    return out


def write_report_pdf(results, pdf_path: str | Path, *, mode: str = "executive", html_path: str | Path | None = None,
                     approved=None) -> Path:
    """The report as a PDF: ``mode`` "full" prints the whole page (``html_path`` when it is already written),
    "executive" the verdict, summary and gate outcomes on at most two pages."""
    from .render import MODES, render_report

    if mode not in MODES:
        raise AuditError(f"--pdf-mode '{mode}': expected one of {', '.join(MODES)}")
    if mode == "full" and html_path is not None:
        return write_pdf(html_path, pdf_path)
    with tempfile.TemporaryDirectory(prefix="bias-audit-pdf-page-") as folder:
        page = Path(folder) / f"report-{mode}.html"
        page.write_text(render_report(results, approved, mode), encoding="utf-8")
        return write_pdf(page, pdf_path)
