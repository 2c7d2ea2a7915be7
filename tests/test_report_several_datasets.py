"""A run of three datasets (WinoBias + BBQ + CrowS-Pairs): one report with one verdict and one part per
dataset; the BBQ and CrowS-Pairs parts (and their own reports) speak their dataset's language, with
their per-category / per-bias-type tables and charts, and contain no WinoBias word. Opened in Chromium
(no console error, no request), with screenshots saved as artifacts."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys

import pytest

from shared_data import bbq_dir, crows_pairs_dir
from test_report_browser import CHROMIUM, _assert_clean, artifacts_dir, load_in_chromium

WINOBIAS_WORDS = re.compile(r"occupation|pronoun|O-SB|A-SB|\bRPA\b|referent|WinoBias|twin|a_sb|o_sb", re.I)


def _text(fragment: str) -> str:
    fragment = re.sub(r"<(svg|style)\b.*?</\1>", " ", fragment, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", fragment)))


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    bbq, crows = bbq_dir(), crows_pairs_dir()
    if bbq is None or crows is None:
        pytest.skip("the official BBQ and CrowS-Pairs data are not in ../shared")
    tmp = tmp_path_factory.mktemp("three")
    (tmp / "bias-audit.toml").write_text("max_items = 40\nn_resamples = 100\nmin_items = 20\n")
    out = tmp / "out"
    done = subprocess.run(
        [sys.executable, "-m", "audit.cli", "run", "--config", str(tmp / "bias-audit.toml"), "--model", "reference-fair",
         "--data", "generated", "--data", f"bbq:{bbq / 'data'}#Age,Religion", "--data", f"crows-pairs:{crows}",
         "--out", str(out), "--no-cache", "--json"], capture_output=True, text=True, timeout=900, cwd=tmp)
    summary = json.loads(done.stdout)
    return done, summary, out


def test_three_datasets_give_one_report_with_one_verdict(three):
    done, summary, out = three
    records = {d: json.loads((out / d / "results.json").read_text()) for d in ("winobias", "bbq", "crows-pairs")}
    assert [d["dataset"] for d in summary["datasets"]] == ["winobias", "bbq", "crows-pairs"]
    order = ("fail", "incomplete", "inconclusive", "pass")
    worst = min((r["verdict"] for r in records.values()), key=order.index)
    assert summary["verdict"] == worst and done.returncode == summary["exit_code"]
    page = (out / "report.html").read_text()
    header = re.search(r"<header>.*?</header>", page, re.S).group(0)
    assert len(re.findall(r'class="verdict ', page)) == 1 and f'class="verdict {worst}"' in header
    assert "Bias audit over 3 datasets" in header
    parts = re.findall(r'<section id="(d\d-[a-z-]+)" class="dataset-part"', page)
    assert parts == ["d0-winobias", "d1-bbq", "d2-crows-pairs"]
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "an id repeats across the parts"
    for target in re.findall(r'href="#([^"]+)"', page):
        assert target in ids, f"in-page link to a missing id #{target}"
    for dataset, record in records.items():  # each part shows its record's verdict
        assert re.search(rf'<th scope="row"><a href="#d\d-{dataset}">[^<]*</a></th><td><span class="status {record["verdict"]}">', page)


def _part(page: str, anchor: str) -> str:
    return re.search(rf'<section id="{anchor}" class="dataset-part".*?(?=<section id="d\d-[a-z-]+" class="dataset-part"|</main>)',
                     page, re.S).group(0)


def test_the_bbq_and_crows_pairs_parts_speak_their_language(three):
    _, _, out = three
    page = (out / "report.html").read_text()
    bbq, crows = _part(page, "d1-bbq"), _part(page, "d2-crows-pairs")
    for part, heading, columns in ((bbq, "Results by category", ("s_AMB", "s_DIS", "Accuracy, ambiguous")),
                                   (crows, "Results by bias type", ("Stereotype preference", "Log-likelihood difference"))):
        text = _text(part)
        assert heading in text and all(c in text for c in columns)
        assert not WINOBIAS_WORDS.search(text), WINOBIAS_WORDS.search(text).group(0)
        assert re.search(r'<svg[^>]*class="chart"', part)  # its own chart
    assert "Age" in _text(bbq) and "Religion" in _text(bbq)
    assert all(t in _text(crows) for t in ("race-color", "religion", "Blodgett"))
    for name in ("bbq", "crows-pairs"):  # and each dataset's own report too
        own = (out / name / "report.html").read_text()
        assert not WINOBIAS_WORDS.search(_text(own)), (name, WINOBIAS_WORDS.search(_text(own)).group(0))


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed")
def test_the_reports_render_in_chromium_with_screenshots(three):
    _, _, out = three
    shots = artifacts_dir()
    for page, name in ((out / "report.html", "report-three-datasets"), (out / "bbq" / "report.html", "report-bbq"),
                       (out / "crows-pairs" / "report.html", "report-crows-pairs")):
        result = load_in_chromium(page, screenshot=shots / f"{name}.png")
        _assert_clean(result)
        facts = result["facts"]
        assert facts["width"] <= 1280, f"{name} scrolls sideways at 1280 px"
        assert facts["charts"] >= 1 and facts["chartsWithTitle"] == facts["charts"]
        if name != "report-three-datasets":
            assert not WINOBIAS_WORDS.search(facts["text"]), (name, WINOBIAS_WORDS.search(facts["text"]).group(0))
        png = (shots / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    text = load_in_chromium(out / "report.html")["facts"]["text"]
    assert "Verdict by dataset" in text and "Results by category" in text and "Results by bias type" in text
