"""The report's first page as a stakeholder reads it (issue 24), checked in headless Chromium on real runs.

* each number appears with one label: every shown statistic is a ``<data data-q data-label>`` (audit.report.quantities);
  one quantity has one label and one written value wherever it appears, and within one model and condition one
  label names one quantity;
* no failing outcome renders as a value that reads as meeting its threshold (gate details, matrix, executive page),
  on a planted record whose failing values lie a hair beyond their thresholds (0.5997 against >= 0.6);
* the executive PDF has at most 2 pages (on the run and on a study-scale record of 288 gates); the full PDF has no
  near-empty page;
* no empty section (every section shows a table, chart or list; no "nothing was run" placeholders);
* a chance-level model (a random-weight tiny Llama) reads "not auditable", never as biased.

The chance-level record is a real ``bias-audit run`` of the tiny model (a few seconds); Chromium, pdfinfo and
pdftoppm (poppler) are needed for the page checks, which skip with the reason where they are missing.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from audit.report import render_report, write_report, write_report_pdf

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from test_report_browser import CHROMIUM, Chromium, artifacts_dir  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (Debian: apt-get install chromium)")
needs_poppler = pytest.mark.skipif(shutil.which("pdfinfo") is None or shutil.which("pdftoppm") is None,
                                   reason="no pdfinfo/pdftoppm (Debian: apt-get install poppler-utils)")
CHANCE = "chance-level"

FACTS_JS = r"""
(() => {
  const text = e => (e ? e.innerText : '').trim();
  const tags = [...document.querySelectorAll('data.q')].map(d => ({
    q: d.dataset.q, label: d.dataset.label, text: text(d), value: d.value,
    where: (d.closest('section') || {}).id || (d.closest('table') || {}).className || ''}));
  const rows = {};
  const gates = [...document.querySelectorAll('table.gates tbody tr')].map(tr => {
    const cells = tr.querySelectorAll('td');
    const row = {id: tr.id, status: tr.className, outcome: text(cells[0]), compared: text(cells[4].querySelector('data')),
                 threshold: text(cells[5]), gate: text(cells[1])};
    rows[tr.id] = row;
    return row;
  });
  const cells = [...document.querySelectorAll('table.matrix td.cell a')].map(a => ({
    cls: a.parentElement.className, text: text(a.querySelector('data')), symbol: text(a),
    threshold: (rows[a.getAttribute('href').slice(1)] || {}).threshold}));
  const attention = [...document.querySelectorAll('table.attention tbody tr')].map(tr => {
    const c = tr.querySelectorAll('td');
    return {outcome: text(c[0]), model: text(c[1]), compared: text(c[4]), threshold: text(c[5])};
  });
  const sections = [...document.querySelectorAll('section')].map(s => ({
    id: s.id, content: s.querySelectorAll('table, figure, dl, details').length, text: text(s)}));
  return JSON.stringify({tags, gates, cells, attention, sections, text: document.body.innerText,
                         title: document.title});
})()
"""


def page_facts(html: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="bias-audit-chromium-") as profile:
        browser = Chromium(CHROMIUM, Path(profile))
        try:
            browser.open_page()
            browser.send("Page.navigate", {"url": html.resolve().as_uri()})
            browser.wait_for("Page.loadEventFired")
            return json.loads(browser.evaluate(FACTS_JS))
        finally:
            browser.close()


# --- records ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chance_record(tiny_model_dir, tmp_path_factory) -> dict:
    """A real run of a model that does not do the task (random weights: accuracy at chance)."""
    out = tmp_path_factory.mktemp("chance-run")
    done = subprocess.run(
        [sys.executable, "-m", "audit.cli", "run", "--model", str(tiny_model_dir), "--name", f"{CHANCE}={tiny_model_dir}",
         "--max-items", "200", "--n-resamples", "200", "--seed", "0", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert (out / "results.json").is_file(), done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads((out / "results.json").read_text(encoding="utf-8"))


def _plant(record: dict, gate: dict, lo: float, hi: float, threshold: float, status: str) -> None:
    """A gate's interval and outcome, and the recorded statistic it reads set to the same estimate."""
    estimate = (lo + hi) / 2
    gate.update(ci=[lo, hi], estimate=estimate, threshold=threshold, status=status, bound="interval",
                bound_value=lo if gate["direction"] == "max" else hi, reason=None)
    cond = next(m for m in record["models"] if m["name"] == gate["model"])["conditions"][gate["condition"]]
    if gate["metric"] == "a_sb":
        cond["debiased_effect"] = estimate
    elif gate["metric"] == "accuracy":
        cond["rpa"]["overall"] = estimate
    elif gate["metric"] == "rpa_gap":
        cond["rpa_gap_abs"] = estimate


@pytest.fixture(scope="module")
def hairline_record(chance_record) -> dict:
    """The chance-level run with failing values planted a hair beyond their thresholds (read as 3 decimals,
    each would meet it) and a passing one a hair within."""
    out = copy.deepcopy(chance_record)
    gates = {g["metric"]: g for g in out["gates"] if g["condition"] == "zero_shot"}
    _plant(out, gates["accuracy"], 0.52, 0.5997, 0.6, "fail")  # the case: must not read 0.600 >= 0.600
    _plant(out, gates["a_sb"], 0.1502, 0.31, 0.15, "fail")  # theta: 0.1502 > 0.15
    _plant(out, gates["rpa_gap"], 0.1004, 0.2, 0.1, "fail")  # 0.1004 > 0.1
    _plant(out, gates["worst_o_sb"], 0.2, 0.49996, 0.5, "pass")  # reads 0.500 <= 0.500: a pass may round to its limit
    out["verdict"] = "fail"
    return out


# --- the checks, on the page's facts ---------------------------------------------------------------------


def _number(text: str) -> float:
    return float(text.replace("\u2212", "-"))


def _threshold(text: str) -> tuple[str, float]:
    relation, value = text.split()
    return relation, _number(value)


def reads_as_meeting(compared: str, threshold: str) -> bool:
    relation, limit = _threshold(threshold)
    value = _number(compared if not compared.startswith((".", "-.")) else compared.replace(".", "0.", 1))
    return value <= limit if relation == "\u2264" else value >= limit


def assert_one_label_per_number(facts: dict) -> None:
    by_key: dict[str, set] = {}
    written: dict[str, set] = {}
    names: dict[tuple[str, str], set] = {}
    for tag in facts["tags"]:
        by_key.setdefault(tag["q"], set()).add(tag["label"])
        text = tag["text"]
        written.setdefault(tag["q"], set()).add(text.replace(".", "0.", 1) if text.startswith(".") else
                                                text.replace("-.", "-0.", 1) if text.startswith("-.") else text)
        names.setdefault((tag["q"].split("-")[0], tag["label"]), set()).add(tag["q"])
    assert facts["tags"], "no tagged number on the page"
    assert not {k: v for k, v in by_key.items() if len(v) > 1}, "a number shown under two labels"
    assert not {k: v for k, v in written.items() if len(v) > 1}, "a number written two ways"
    assert not {k: v for k, v in names.items() if len(v) > 1}, "one label for two numbers of one model and condition"


def assert_no_failure_reads_as_a_pass(facts: dict) -> int:
    checked = 0
    for row in facts["gates"]:
        if "gate-fail" in row["status"] and row["compared"]:
            assert not reads_as_meeting(row["compared"], row["threshold"]), row
            checked += 1
    for cell in facts["cells"]:
        if "fail" in cell["cls"].split() and cell["text"] and cell["threshold"]:
            assert not reads_as_meeting(cell["text"], cell["threshold"]), cell
            checked += 1
    for row in facts["attention"]:
        if row["outcome"].lower() == "fail" and row["compared"]:
            assert not reads_as_meeting(row["compared"], row["threshold"]), row
            checked += 1
    return checked


def assert_no_empty_section(facts: dict) -> None:
    for section in facts["sections"]:
        assert section["content"] > 0, f"section #{section['id']} shows no table, chart or list"
    placeholders = ("No few-shot condition was run", "Only one model was audited", "no transfer could be computed",
                    "zero_shot not run")
    assert not [p for p in placeholders if p in facts["text"]]


# --- tests -----------------------------------------------------------------------------------------------


@needs_chromium
def test_a_chance_level_model_reads_not_auditable(chance_record, tmp_path):
    gates = [g for g in chance_record["gates"] if g["model"] == CHANCE]
    assert any(g["metric"] == "accuracy" and g["status"] == "fail" for g in gates)  # it does not do the task
    html = write_report(chance_record, tmp_path / "report.html")
    facts = page_facts(html)
    summary = next(s["text"] for s in facts["sections"] if s["id"] == "summary")
    assert f"NOT AUDITABLE: {CHANCE} under" in summary and "this is not a finding of bias" in summary
    assert "the bias is not shown to be within the agreed limits" not in summary  # nothing says it is biased
    assert facts["title"].endswith(f": NOT AUDITABLE ({CHANCE})")
    bias_cells = [c for c in facts["cells"] if "not-auditable" in c["cls"]]
    assert bias_cells and all("fail" not in c["cls"].split() for c in bias_cells)
    assert all(c["symbol"].startswith("n/a") for c in bias_cells)
    assert_one_label_per_number(facts)
    assert_no_empty_section(facts)
    assert_no_failure_reads_as_a_pass(facts)


@needs_chromium
def test_failing_values_a_hair_beyond_the_threshold_never_read_as_passes(hairline_record, tmp_path):
    html = write_report(hairline_record, artifacts_dir() / "report-hairline.html")
    facts = page_facts(html)
    assert assert_no_failure_reads_as_a_pass(facts) >= 6  # three planted failures, in the details and the matrix
    shown = {tag["text"] for tag in facts["tags"]}
    assert {"0.5997", "0.1502", "0.1004"} <= shown  # as many decimals as the comparison needs...
    assert ".5997" in {c["text"] for c in facts["cells"]}  # ... in the matrix too
    assert_one_label_per_number(facts)  # ... and then everywhere that number is shown
    executive = tmp_path / "executive.html"
    executive.write_text(render_report(hairline_record, mode="executive"), encoding="utf-8")
    exec_facts = page_facts(executive)
    assert assert_no_failure_reads_as_a_pass(exec_facts) >= 3
    assert_one_label_per_number(exec_facts)
    assert_no_empty_section(exec_facts)


def test_the_negative_controls_of_the_checks():
    """The checks catch what they look for: a rounded failure, a second label, an empty section."""
    assert reads_as_meeting("0.600", "\u2265 0.600") and not reads_as_meeting("0.5997", "\u2265 0.6000")
    assert reads_as_meeting(".500", "\u2264 0.500") and not reads_as_meeting(".502", "\u2264 0.500")
    tag = {"q": "s1-a", "label": "A-SB", "text": "0.070", "value": "0.07"}
    with pytest.raises(AssertionError, match="two labels"):
        assert_one_label_per_number({"tags": [tag, {**tag, "label": "theta"}]})
    with pytest.raises(AssertionError, match="two ways"):
        assert_one_label_per_number({"tags": [tag, {**tag, "text": "0.07"}]})
    with pytest.raises(AssertionError, match="two numbers"):
        assert_one_label_per_number({"tags": [tag, {**tag, "q": "s1-b", "text": "0.075"}]})
    with pytest.raises(AssertionError):
        assert_no_failure_reads_as_a_pass({"gates": [{"status": "gate-fail", "compared": "0.600",
                                                      "threshold": "\u2265 0.600"}], "cells": [], "attention": []})
    with pytest.raises(AssertionError, match="shows no table"):
        assert_no_empty_section({"sections": [{"id": "few-shot", "content": 0, "text": ""}], "text": ""})


def _pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))


def _filled(pdf: Path) -> list[float]:
    """Per page, how far down the page its content reaches (0 to 1), from a low-resolution rendering."""
    import numpy as np
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="bias-audit-pages-") as folder:
        subprocess.run(["pdftoppm", "-r", "20", "-gray", str(pdf), f"{folder}/p"], check=True)
        out = []
        for page in sorted(Path(folder).glob("p-*.pgm")):
            ink = np.where((np.asarray(Image.open(page)) < 200).any(axis=1))[0]
            out.append((ink.max() + 1) / np.asarray(Image.open(page)).shape[0] if len(ink) else 0.0)
        return out


@needs_chromium
@needs_poppler
def test_executive_pdf_has_at_most_two_pages_and_the_full_one_no_near_empty_page(hairline_record, tmp_path):
    import study_shape

    study = study_shape.build()  # 2 models x 29 conditions, 288 gates
    pages = {}
    for name, record in (("run", hairline_record), ("study", study)):
        pdf = write_report_pdf(record, tmp_path / f"{name}-executive.pdf", mode="executive")
        pages[name] = _pages(pdf)
        shutil.copyfile(pdf, artifacts_dir() / f"report-{name}-executive.pdf")
    print(f"\nexecutive PDF pages: {pages}")
    assert all(1 <= n <= 2 for n in pages.values()), pages
    html = write_report(hairline_record, tmp_path / "full.html")
    full = write_report_pdf(hairline_record, tmp_path / "full.pdf", mode="full", html_path=html)
    filled = _filled(full)
    print(f"full PDF: {len(filled)} pages, filled to {[round(float(f), 2) for f in filled]} of their height")
    assert len(filled) >= 3
    assert all(f >= 0.5 for f in filled[:-1]), filled  # no page but the last ends in its upper half
