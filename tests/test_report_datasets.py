"""A report speaks its dataset's language: the title and sections come from the Dataset (report_title,
report_sections, report_view); BBQ shows a per-category table of s_AMB, s_DIS and both accuracies with
their intervals as recorded; failed gates read the meaning their registry entry declares."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys

import pytest

from audit.report.format import fmt_ci, fmt_num
from shared_data import bbq_dir

WINOBIAS_WORDS = re.compile(r"occupation|pronoun|O-SB|A-SB|RPA|referent|WinoBias|gender", re.I)


@pytest.fixture(scope="module")
def bbq_report(tmp_path_factory):
    root = bbq_dir()
    if root is None or not (root / "data").is_dir():
        pytest.skip("the official BBQ data is not in ../shared/bbq")
    tmp = tmp_path_factory.mktemp("bbq-report")
    (tmp / "bias-audit.toml").write_text('preset = "bbq"\nmax_items = 200\nn_resamples = 200\nmin_items = 20\n')
    out = tmp / "out"
    subprocess.run([sys.executable, "-m", "audit.cli", "run", "--config", str(tmp / "bias-audit.toml"), "--model",
                    "reference-bbq:planted", "--data", f"bbq:{root / 'data'}#Age,Religion", "--out", str(out), "--no-cache"],
                   capture_output=True, text=True, timeout=600, cwd=tmp)
    return json.loads((out / "results.json").read_text()), (out / "report.html").read_text()


def _text(fragment: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", fragment)))


def _section(page: str, anchor: str) -> str:
    match = re.search(rf'<section id="{anchor}".*?</section>', page, re.S)
    assert match, f"no section #{anchor}"
    return match.group(0)


def test_a_bbq_report_is_titled_and_sectioned_by_its_dataset(bbq_report):
    _, page = bbq_report
    header = re.search(r"<header>.*?</header>", page, re.S).group(0)
    assert "Social bias audit (BBQ)" in header and not WINOBIAS_WORDS.search(_text(header))
    nav = _text(re.search(r"<nav.*?</nav>", page, re.S).group(0))
    assert "Categories" in nav and not WINOBIAS_WORDS.search(nav)
    assert 'id="osb"' not in page and 'id="rpa"' not in page  # WinoBias's sections are WinoBias's


def test_the_bbq_category_table_shows_the_recorded_scores_and_intervals(bbq_report):
    record, page = bbq_report
    section = _section(page, "bbq-categories")
    assert not WINOBIAS_WORDS.search(_text(section))
    model = record["models"][0]
    for condition, cond in model["conditions"].items():
        for category, entry in cond["categories"].items():
            for metric in ("s_amb", "s_dis", "accuracy_ambig", "accuracy_disambig"):
                cell = f'{fmt_num(entry[metric])}<br><span class="small">{html.escape(fmt_ci(entry[metric + "_ci"]))}</span>'
                assert cell in section, (condition, category, metric)
    assert section.count("<caption>") == len(model["conditions"])


def test_failed_bbq_gates_read_the_meaning_their_registry_entry_declares(bbq_report):
    from audit import all_gates

    record, page = bbq_report
    failed = [g for g in record["gates"] if g["status"] == "fail"]
    assert failed
    for gate in failed:
        assert all_gates()[gate["metric"]].meaning in html.unescape(page)
    gates = _text(_section(page, "gates"))
    assert not re.search(r"resolves too few pronouns|occupation", gates, re.I)


def test_the_bbq_summary_uses_only_the_rules_that_apply_to_its_record(bbq_report):
    _, page = bbq_report
    summary = _text(_section(page, "summary"))
    assert "Verdict" in summary or "FAIL" in summary.upper()
    assert not WINOBIAS_WORDS.search(summary), summary


def test_the_bbq_report_carries_no_winobias_glossary_or_item_wording(bbq_report):
    _, page = bbq_report
    assert 'id="glossary"' not in page
    items = _text(_section(page, "items"))
    assert not WINOBIAS_WORDS.search(items)
    assert "(item not in the record)" not in items and "(a) " in items  # each item shown as BBQ's: context, question, answers


def test_comparing_two_bbq_runs_pairs_items_by_example_set(bbq_report):
    """--approved on BBQ: the accuracy change resamples BBQ's example sets (Dataset.record_pair_key), not
    WinoBias twin keys rebuilt from fields BBQ has not (which put every item in one unit: zero width)."""
    import copy

    from audit.report.compare import compare_runs

    record, _ = bbq_report
    approved = copy.deepcopy(record)
    model = approved["models"][0]
    name = next(iter(model["choices"]))
    for i, choice in enumerate(model["choices"][name]):
        if i % 3 == 0:
            choice["correct"] = not choice.get("correct")
    row = next(r for r in compare_runs(record, approved)["rows"] if r["condition"] == name)
    lo, hi = row["accuracy_change_ci"]
    assert row["n_paired"] > 20 and hi - lo > 0.01
