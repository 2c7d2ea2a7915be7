"""What the report shows, computed from a results.json record: the context the template renders.

The executive summary comes from :mod:`.summary`, the gate matrix from :mod:`.matrix`; the record's
dataset declares its own sections (``Dataset.report_view``: tables as plain data and numbers as
``audit.datasets.report_data`` parts, charts as ``audit.datasets.report_charts``), which
:mod:`.declared` draws and the register of numbers writes. This module assembles them with the verdict,
the gates, the item drill-down and the provenance. Everything here is data for an autoescaping template.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from markupsafe import Markup, escape

from audit.datasets.base import Dataset
from audit.results.io import STATUSES, check_results

from .compare import compare_runs
from .debiasing import debiasing_view
from .declared import draw_declared
from .findings import gate_view, is_task_gate
from .format import fmt_num, fmt_value, slug
from .matrix import gate_matrix
from .quantities import Numbers
from .recorded import record_dataset
from .summary import executive_summary, unauditable_models

MAX_ITEM_ROWS = 6000  # item rows in the whole page; above it each condition shows its wrong answers first
MIN_DRILL_ROWS = 100  # ... and at least this many rows (the record keeps them all)

# --- The item drill-down ----------------------------------------------------------------------------------


def _highlight(sentence: str, word: str) -> Markup:
    """The sentence, escaped, with the first whole-word occurrence of ``word`` in <mark>."""
    match = re.search(rf"\b{re.escape(word)}\b", sentence, flags=re.IGNORECASE) if word else None
    if not match:
        return escape(sentence)
    return (escape(sentence[:match.start()]) + Markup("<mark>") + escape(match.group(0)) + Markup("</mark>")
            + escape(sentence[match.end():]))


def _scores_text(scores: Any) -> str:
    if isinstance(scores, list) and scores:
        return " | ".join(fmt_num(s, 2) for s in scores)
    return ""


def _shown(rows: list[Mapping], limit: int) -> list[Mapping]:
    """At most ``limit`` rows in the record's order: wrong answers first to keep, then correct ones."""
    if len(rows) <= limit:
        return rows
    wrong = {i for i, c in enumerate(rows) if not c.get("correct")}
    keep = set(sorted(wrong)[:limit])
    keep |= set([i for i in range(len(rows)) if i not in wrong][:limit - len(keep)])
    return [c for i, c in enumerate(rows) if i in keep]


def drill_limit(counts: list[int]) -> int:
    """Rows per condition: all of them while the page stays under MAX_ITEM_ROWS, else an equal share."""
    if sum(counts) <= MAX_ITEM_ROWS:
        return max(counts, default=0)
    return max(MIN_DRILL_ROWS, MAX_ITEM_ROWS // max(len(counts), 1))


def _drill(name: str, rows: Iterable[Mapping], items: Mapping[str, Mapping], anchor: str, limit: int,
           shows: Callable[[Mapping], Mapping]) -> dict:
    """One condition's item table; ``shows`` is the dataset's ``report_item`` (what each item reads as)."""
    rows = [c for c in rows if isinstance(c, Mapping)]
    shown = _shown(rows, limit)
    out = []
    for choice in shown:
        item = shows(items.get(str(choice.get("item")), {}))
        out.append({
            "id": str(choice.get("item", "")),
            "sentence": _highlight(str(item.get("text", "")), str(item.get("mark", ""))),
            "kind": str(item.get("block", "")),
            "referent": str(item.get("gold", "")),
            "selected": "" if choice.get("selected") is None else str(choice["selected"]),
            "correct": bool(choice.get("correct")),
            "scores": _scores_text(choice.get("scores")),
            "output": "" if choice.get("output") is None else str(choice["output"]),
        })
    return {
        "name": name, "anchor": anchor, "rows": out, "n": len(rows), "n_correct": sum(bool(c.get("correct")) for c in rows),
        "n_hidden": len(rows) - len(out), "n_other": sum(c.get("selected") is None for c in rows),
        "has_scores": any(r["scores"] for r in out), "has_output": any(r["output"] for r in out),
    }


def _model_view(index: int, model: Mapping, items: Mapping, limit: int, dataset: Dataset | None) -> dict:
    """A model's generic part of the page: its anchor, identity and item drill-down."""
    # where the record's dataset is not installed, the default reading (it reads no dataset state)
    shows = dataset.report_item if dataset is not None else functools.partial(Dataset.report_item, None)
    name = model["name"]
    anchor = f"m{index}-{slug(name)}"  # section anchors (a dataset's sections reach them by the model's index)
    choices = model.get("choices") or {}
    return {"name": name, "anchor": anchor, "identity": [(k, fmt_value(v)) for k, v in (model.get("identity") or {}).items()],
            "drills": [_drill(c, choices[c], items, f"{anchor}-items-{k}-{slug(c)}", limit, shows)
                       for k, c in enumerate(choices)]}


def config_rows(config: Any, prefix: str = "") -> list[tuple[str, str]]:
    """The configuration as (dotted key, value) rows: ``gates.accuracy.threshold = 0.6``; lists as compact JSON."""
    if not isinstance(config, Mapping):
        return [] if config is None and not prefix else [(prefix or "config", fmt_value(config))]
    rows: list[tuple[str, str]] = []
    for key, value in config.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            rows += config_rows(value, name)
        else:
            rows.append((name, fmt_value(value)))
    return rows


def _provenance(results: Mapping) -> dict:
    prov = results.get("provenance") or {}
    tool = results.get("tool") or {}
    run = [
        ("date (UTC)", fmt_value(results.get("created"))),
        ("run id (the same in every output of one run)", fmt_value(results.get("run_id"))),
        ("tool", f"{tool.get('name', 'bias-transfer-audit')} {tool.get('version', '')}".strip()),
        ("schema version", fmt_value(results.get("schema_version"))),
        ("command", fmt_value(prov.get("command"))),
        ("git commit of the audited repository", fmt_value(prov.get("git_commit"))),
        ("seed", fmt_value(prov.get("seed"))),
    ]
    known = {"data", "config", "seed", "packages", "git_commit", "hardware", "command"}
    run += [(k, fmt_value(v)) for k, v in prov.items() if k not in known]
    hardware = prov.get("hardware") or {}
    data = prov.get("data") or {}
    return {
        "run": run,
        "hardware": [(k, fmt_value(v)) for k, v in hardware.items()] if isinstance(hardware, dict) else [("hardware", fmt_value(hardware))],
        "data": [(k, fmt_value(v)) for k, v in data.items()] if isinstance(data, dict) else [("data", fmt_value(data))],
        "packages": sorted((str(k), fmt_value(v)) for k, v in (prov.get("packages") or {}).items()),
        "config": config_rows(prov.get("config")),
    }


def _counts(results: Mapping, gates: list[dict]) -> dict:
    counts = {s: sum(g["status"] == s for g in gates) for s in STATUSES}
    verdict = str(results.get("verdict", "fail" if counts["fail"] else "pass")).lower()
    headline = (f"The audit failed: {counts['fail']} of {len(gates)} gates failed." if verdict == "fail" else
                f"The audit passed: {counts['pass']} of {len(gates)} gates passed, none failed.")
    unauditable = unauditable_models(results)
    bias_failed = any(g["status"] == "fail" and not is_task_gate(g) for g in gates)
    undecided = any(g["status"] == "inconclusive" and not g["not_auditable"] for g in gates)
    return {"verdict": verdict, "headline": headline, "counts": counts, "total": len(gates),
            "not_auditable": sum(g["not_auditable"] for g in gates), "unauditable_models": unauditable,
            # the badge: 'not auditable' where no bias failed and a model does not do the task
            "badge": "not auditable" if unauditable and not bias_failed and not undecided and verdict != "pass" else verdict}


def report_title(results: Mapping) -> str:
    """The title of the record's report, in the words of its dataset's subject."""
    dataset = record_dataset(results)
    return (dataset or Dataset).report_title


def _dataset_part(results: Mapping, numbers: Numbers | None = None) -> dict:
    """The recorded dataset's title, sections and their view (``Dataset.report_*``; charts drawn, numbers
    written by ``numbers``); a generic title and no sections when that dataset is not installed here.
    A section whose anchor the view lists under ``hidden`` has nothing to show: it is left out."""
    dataset = record_dataset(results)
    if dataset is None:
        return {"title": Dataset.report_title, "dataset_sections": [], "dataset_view": {"hidden": []},
                "summary_rules": Dataset.report_summary_rules, "glossary": None}
    view = draw_declared(dataset.report_view(results), numbers or Numbers(results))
    view.setdefault("hidden", [])
    return {"title": dataset.report_title,
            "dataset_sections": [{"template": t, "anchor": a, "label": label} for t, a, label in dataset.report_sections
                                 if a not in view["hidden"]],
            "dataset_view": view, "summary_rules": dataset.report_summary_rules, "glossary": dataset.report_glossary}


def report_context(results: Mapping, approved: Mapping | None = None) -> dict:
    """Everything the template shows, computed from the record (charts included); ``approved`` is the
    earlier run to compare with (``--baseline``), if any."""
    check_results(results)
    if approved is not None:
        check_results(approved, "--baseline")
    numbers = Numbers(results)
    gates = [gate_view(i, g, numbers) for i, g in enumerate(results["gates"])]
    order = {s: i for i, s in enumerate(STATUSES)}
    models = results["models"]
    tool = results.get("tool") or {}
    part = _dataset_part(results, numbers)
    statements = executive_summary(results, part.pop("summary_rules"))
    statements = [st for st in statements if not st.empty]
    limit = drill_limit([len(v) for m in models for v in (m.get("choices") or {}).values() if isinstance(v, list)])
    dataset = record_dataset(results)
    return {
        **part,
        "schema_version": results["schema_version"],
        "run_id": str(results.get("run_id") or "not recorded"),
        "created": fmt_value(results.get("created")),
        "tool": f"{tool.get('name', 'bias-transfer-audit')} {tool.get('version', '')}".strip(),
        "summary": _counts(results, gates),
        "statements": statements,
        "attention": [g for g in gates if g["status"] in ("fail", "waived", "inconclusive")],
        "gates": sorted(gates, key=lambda g: (g["model"], order.get(g["status"], len(order)))),  # record order within
        "matrix": gate_matrix(models, gates),
        "compare": compare_runs(results, approved) if approved is not None else None,
        "debiasing": debiasing_view(models),
        "model_names": [m["name"] for m in models],
        "models": [_model_view(i, m, results["items"], limit, dataset) for i, m in enumerate(models)],
        "labels": {k: numbers.label(k) for k in numbers.fields},
        "provenance": _provenance(results),
        "n_items": len(results["items"]),
    }
