"""The report at study scale (two models x the 25 conditions of the ``study`` preset, 248 gates), as a
stakeholder meets it: in headless Chromium at 1400 px, the executive summary and the gate matrix come
before the first chart, within 1.5 screen heights; the page stays clean; ``--pdf`` prints a PDF whose
text holds the verdict, every failed gate and the summary.

The record is the study-shaped fixture (``tests/fixtures/study_shape.py``), or a real study record
when ``$BIAS_AUDIT_STUDY_RESULTS`` names one (computing it takes minutes, so it is not committed).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from audit import cli, load_results, write_report
from audit.report import write_pdf
from audit.report.summary import executive_summary

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from test_report_browser import CHROMIUM, Chromium, _assert_clean, artifacts_dir  # noqa: E402

import study_shape  # noqa: E402

WIDTH, SCREEN = 1400, 900
STUDY = os.environ.get("BIAS_AUDIT_STUDY_RESULTS")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (Debian: apt-get install chromium)")


@pytest.fixture(scope="module")
def study() -> tuple[dict, Path]:
    results = load_results(STUDY) if STUDY else study_shape.build()
    return results, write_report(results, artifacts_dir() / "report-study.html")


def _measure(html: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="bias-audit-chromium-") as profile:
        browser = Chromium(CHROMIUM, Path(profile))
        try:
            browser.open_page()
            browser.send("Emulation.setDeviceMetricsOverride",
                         {"width": WIDTH, "height": SCREEN, "deviceScaleFactor": 1, "mobile": False})
            url = html.resolve().as_uri()
            browser.send("Page.navigate", {"url": url})
            browser.wait_for("Page.loadEventFired")
            browser.drain(1.0)
            facts = json.loads(browser.evaluate(
                "(() => { const top = e => e.getBoundingClientRect().top + window.scrollY;"
                " const m = document.querySelector('#matrix');"
                " return JSON.stringify({scripts: document.scripts.length,"
                " first_chart: top(document.querySelector('svg.chart')),"
                " summary_top: top(document.querySelector('#summary')),"
                " matrix_bottom: m.getBoundingClientRect().bottom + window.scrollY,"
                " width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight}); })()"))
            shot = browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": {
                "x": 0, "y": 0, "width": WIDTH, "height": int(1.5 * SCREEN), "scale": 1}})
            import base64
            (artifacts_dir() / "report-study.png").write_bytes(base64.b64decode(shot["data"]))
            browser.drain(0.3)
        finally:
            browser.close()
    events = browser.events
    result = {"url": url, "facts": facts, "dialogs": [],
              "requests": [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"],
              "console_errors": [str(e["params"]) for e in events if e.get("method") in ("Runtime.exceptionThrown",)
                                 or (e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error")
                                 or (e.get("method") == "Runtime.consoleAPICalled" and e["params"].get("type") == "error")]}
    return result


@needs_chromium
def test_summary_and_gate_matrix_fit_in_the_first_one_and_a_half_screens(study):
    results, html = study
    assert len(results["gates"]) >= 200 and len(results["models"]) == 2
    result = _measure(html)
    _assert_clean(result)
    facts = result["facts"]
    print(f"\nfirst chart at {facts['first_chart']:.0f} px; matrix ends at {facts['matrix_bottom']:.0f} px; "
          f"page {facts['height']} px tall; {html.stat().st_size / 1e6:.2f} MB")
    assert facts["summary_top"] < facts["matrix_bottom"] <= facts["first_chart"] <= 1.5 * SCREEN
    assert facts["width"] <= WIDTH, "the page scrolls sideways at 1400 px"


def _squeeze(text: str) -> str:
    """Text without whitespace or hyphens: pdftotext joins a word hyphen-broken at a line end and drops the hyphen."""
    return re.sub(r"[\s\-\u2010\u2212]+", "", text)


def _pdf_text(pdf: Path) -> str:
    return _squeeze(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout)


@needs_chromium
@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="no pdftotext (Debian: apt-get install poppler-utils)")
def test_pdf_holds_the_verdict_every_failed_gate_and_the_summary(study, tmp_path):
    results, html = study
    pdf = write_pdf(html, tmp_path / "out" / "report.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-"
    shutil.copyfile(pdf, artifacts_dir() / "report-study.pdf")
    text = _pdf_text(pdf)
    assert "FAIL" in text and "Genderbiastransferaudit" in text
    failed = [g["id"] for g in results["gates"] if g["status"] == "fail"]
    assert failed and [g for g in failed if _squeeze(g) not in text] == []
    for statement in executive_summary(results):
        assert _squeeze(statement.plain) in text, statement.key


def test_pdf_without_an_engine_is_one_line_saying_how_to_get_one(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("BIAS_AUDIT_CHROMIUM", str(tmp_path / "no-such-chromium"))
    fixture = Path(__file__).parent / "fixtures" / "results_example.json"
    code = cli.main(["report", str(fixture), "--out", str(tmp_path / "r.html"), "--pdf", str(tmp_path / "r.pdf")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "apt-get install chromium" in err and "BIAS_AUDIT_CHROMIUM" in err
    assert not (tmp_path / "r.pdf").exists() and not (tmp_path / "r.html").exists()  # checked before any work


def test_run_pdf_without_an_engine_stops_before_the_audit(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("BIAS_AUDIT_CHROMIUM", str(tmp_path / "no-such-chromium"))
    code = cli.main(["run", "--out", str(tmp_path / "out"), "--pdf", str(tmp_path / "r.pdf")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "apt-get install chromium" in err
    assert not (tmp_path / "out").exists()  # nothing ran
