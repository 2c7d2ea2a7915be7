"""One report over several records: a run of several datasets (``bias-audit run --data A --data B``, or
``bias-audit report A.json B.json``) shows one verdict and one part per dataset.

Each record's page is rendered as on its own (:mod:`.render`), then its ``<main>`` becomes one part of
the combined page: every id and in-page link is prefixed with the part's anchor (ids stay unique) and
headings move one level down under the dataset's own heading. The markup rewritten here is ours: text
from records is escaped, so an ``id="`` can only be an attribute.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from audit.results.io import check_results

from .format import slug

# a record's verdict, worst first: the combined verdict is the worst of its parts
VERDICT_ORDER = ("fail", "incomplete", "inconclusive", "pass")
# data-q: a number's quantity key (audit.report.quantities), one per part like an id
_ID = re.compile(r'\b(id|for|aria-labelledby|aria-describedby|aria-controls|data-q)="([^"]+)"')
_HREF = re.compile(r'\b((?:xlink:)?href)="#([^"]+)"')
_URL = re.compile(r"url\(#([^)]+)\)")
_HEADING = re.compile(r"<(/?)h([1-5])\b")


def combined_verdict(records: Sequence[Mapping]) -> str:
    verdicts = [str(r.get("verdict", "incomplete")).lower() for r in records]
    known = [v if v in VERDICT_ORDER else "incomplete" for v in verdicts]
    return min(known, key=VERDICT_ORDER.index) if known else "incomplete"


def _prefixed(fragment: str, prefix: str) -> str:
    fragment = _ID.sub(lambda m: f'{m.group(1)}="{" ".join(prefix + "-" + v for v in m.group(2).split())}"', fragment)
    fragment = _HREF.sub(lambda m: f'{m.group(1)}="#{prefix}-{m.group(2)}"', fragment)
    fragment = _URL.sub(lambda m: f"url(#{prefix}-{m.group(1)})", fragment)
    return _HEADING.sub(lambda m: f"<{m.group(1)}h{int(m.group(2)) + 1}", fragment)


def _part(k: int, record: Mapping, page: str) -> dict:
    from .view import report_title  # the dataset's title as its own report shows it

    anchor = f"d{k}-{slug(str(record.get('dataset') or 'dataset'))}"
    main = re.search(r"<main>(.*)</main>", page, re.S)
    nav = re.findall(r'<li><a href="#([^"]+)">([^<]*)</a></li>', re.search(r"<nav.*?</nav>", page, re.S).group(0))
    summary = record.get("summary") or {}
    return {
        "anchor": anchor, "dataset": str(record.get("dataset") or ""), "title": report_title(record),
        "verdict": str(record.get("verdict", "incomplete")).lower(),
        "gates": summary.get("gates"), "passed": summary.get("passed"), "failed": summary.get("failed"),
        "inconclusive": summary.get("inconclusive"),
        "models": [str(m.get("name")) for m in record.get("models") or []],
        "n_items": len(record.get("items") or {}),
        "nav": [{"href": f"#{anchor}-{target}", "label": label} for target, label in nav],
        "body": _prefixed(main.group(1) if main else "", anchor),
    }


def render_combined(records: Sequence[Mapping]) -> str:
    """The combined HTML page over ``records`` (each a results.json record), one verdict over all."""
    from markupsafe import Markup

    from .render import _environment, render_report

    if not records:
        raise ValueError("a combined report needs at least one record")
    for r in records:
        check_results(r)
    parts = [_part(k, r, render_report(r)) for k, r in enumerate(records)]
    for p in parts:
        p["body"] = Markup(p["body"])  # our own rendered, escaped markup
    tools = {str((r.get("tool") or {}).get("version") or "") for r in records}
    return _environment().get_template("report/combined.html.j2").render(
        verdict=combined_verdict(records), parts=parts, run_ids=sorted({str(r.get("run_id") or "") for r in records} - {""}),
        created=max(str(r.get("created") or "") for r in records), tool=f"bias-transfer-audit {' / '.join(sorted(tools - {''}))}".strip(),
        model_names=list(dict.fromkeys(m for p in parts for m in p["models"])))


def write_combined(records: Sequence[Mapping], out_path: str | Path) -> Path:
    """Render the combined report and write it atomically to ``out_path``; returns the path."""
    from audit.results.atomic import write_atomic

    return write_atomic(Path(out_path), render_combined(records), what="report")
