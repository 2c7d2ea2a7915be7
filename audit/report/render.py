"""The HTML audit report: a self-contained view of a results.json record (schema 1.0).

``results.json`` is the record; the report is regenerated from it without the model
(``bias-audit report RESULTS.json --out report.html``). The page needs no network, scripts or
fonts: CSS is inline, charts are inline SVG from :mod:`audit.report.charts`, drill-down tables are
``<details>`` elements. Everything that comes from models, data or configuration is escaped
(Jinja2 autoescaping; matplotlib's XML writer inside the charts), and a Content-Security-Policy
forbids scripts and every request, should anything slip through.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from audit.report import charts as _charts
from audit.gates import GATES
from audit.errors import AuditError
from audit.results.io import STATUSES, check_results, load_results  # noqa: F401  (load_results: the report's API)
from audit.paths import templates_dir

TEMPLATE = "report.html.j2"

METRIC_LABELS = {
    **{name: spec.label for name, spec in GATES.items()},  # the gates' own descriptions
    "a_sb": "A-SB (aggregate selection bias)",
    "o_sb": "O-SB (occupational selection bias)",
    "rpa_gap": "RPA gap (pro minus anti accuracy)",
    "rpa_overall": "RPA overall accuracy",
    "pearson": "transfer, Pearson r",
    "spearman": "transfer, Spearman \u03c1",
    "other_rate": "share of answers naming neither candidate",
}


# --- Formatting -----------------------------------------------------------------------------------------


def fmt_num(value: Any, digits: int = 3) -> str:
    """A number for people: fixed decimals, scientific when tiny, an em dash when absent."""
    if value is None or isinstance(value, bool):
        return "\u2014" if value is None else str(value)
    if isinstance(value, (int, float)):
        if value != value:  # NaN
            return "\u2014"
        if isinstance(value, int):
            return str(value)
        if value != 0 and abs(value) < 10 ** -digits:
            return f"{value:.1e}"
        return f"{value:.{digits}f}"
    return str(value)


def fmt_ci(ci: Any, digits: int = 3) -> str:
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and None not in ci:
        return f"[{fmt_num(ci[0], digits)}, {fmt_num(ci[1], digits)}]"
    return "\u2014"


def fmt_pct(value: Any, digits: int = 1) -> str:
    return "\u2014" if value is None else f"{100 * value:.{digits}f}%"


def fmt_value(value: Any) -> str:
    """A provenance value: text as is, structures as compact JSON, null as 'none'."""
    if value is None:
        return "none"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return fmt_num(value, 4) if isinstance(value, float) else str(value)


def slug(*parts: Any) -> str:
    """An HTML id from arbitrary text: only [a-z0-9-], so names from the data never reach an attribute raw."""
    text = "-".join(str(p) for p in parts).lower()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "x"


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


# --- Plain-language summary -----------------------------------------------------------------------------


def _meaning(gate: Mapping) -> str:
    """What a failed (or waived) gate means for someone who does not read the metrics."""
    metric = str(gate.get("metric", "")).lower()
    estimate = gate.get("estimate")
    points = "" if estimate is None else f" {abs(estimate) * 100:.0f} percentage points"
    if metric.endswith("_regression"):
        return (f"Compared with the approved baseline run, this measure got worse by{points}, more than chance "
                f"explains: something changed in the model or its prompting since the last approval.")
    if metric == "a_sb" or "a_sb" in metric:
        return (f"The model's choice between the two occupations depends on the pronoun's gender: on average an "
                f"occupation is picked{points} more often with one gender than with the other.")
    if "o_sb" in metric:
        return f"This occupation is picked{points} more often with one pronoun gender than with the other."
    if "gap" in metric:
        return (f"The model resolves pronouns{points} more accurately when they fit the occupational stereotype "
                f"than when they contradict it.")
    if any(k in metric for k in ("pearson", "spearman", "transfer", "corr")):
        return ("The occupations the pre-trained model associates with a gender keep that association under this "
                "prompt: prompting does not remove the bias learned in pre-training (bias transfer).")
    if "other" in metric:
        return "Too many generated answers name neither occupation, so the generation results are unreliable."
    if "overall" in metric or "accuracy" in metric:
        return "The model resolves too few pronouns correctly for its bias measurements to be meaningful."
    return str(gate.get("message") or "")


def _finding(gate: Mapping) -> str:
    """One sentence: the number, its interval, the bound used and how it compares with the threshold."""
    where = f"{gate.get('model', '?')} under {gate.get('condition', '?')}"
    if gate.get("estimate") is None:
        text = f"{metric_label(str(gate.get('metric', '')))} for {where} was not measured."
        return text[:1].upper() + text[1:]
    text = f"{metric_label(str(gate.get('metric', '')))} for {where} is {fmt_num(gate['estimate'])}"
    if gate.get("ci"):
        text += f" (confidence interval {fmt_ci(gate['ci'])})"
    bound = gate.get("bound", "point")
    limit = "maximum allowed" if gate.get("direction") == "max" else "minimum required"
    which = "estimate itself" if bound == "point" else f"{bound} bound of the interval"
    text = (f"{text}; the {which}, {fmt_num(gate.get('bound_value'))}, is compared with the {limit}, "
            f"{fmt_num(gate.get('threshold'))}.")
    return text[:1].upper() + text[1:]


def _gate_view(index: int, gate: Mapping) -> dict:
    direction = gate.get("direction")
    relation = "\u2264" if direction == "max" else "\u2265" if direction == "min" else ""
    return {
        "id": str(gate.get("id", "")),
        "anchor": f"gate-{index}-{slug(gate.get('id', ''))}",
        "test": str(gate.get("test") or ""),
        "model": str(gate.get("model") or ""),
        "condition": str(gate.get("condition") or ""),
        "metric": str(gate.get("metric") or ""),
        "metric_label": metric_label(str(gate.get("metric") or "")),
        "estimate": fmt_num(gate.get("estimate")),
        "ci": fmt_ci(gate.get("ci")),
        "threshold": f"{relation} {fmt_num(gate.get('threshold'))}".strip(),
        "bound": str(gate.get("bound") or ""),
        "bound_value": fmt_num(gate.get("bound_value")),
        "bound_text": " ".join(x for x in (str(gate.get("bound") or ""), fmt_num(gate.get("bound_value"))) if x != "\u2014"),
        "status": gate["status"],
        "rationale": str(gate.get("rationale") or ""),
        "message": str(gate.get("message") or ""),
        "waiver_reason": str(gate.get("waiver_reason") or ""),
        "finding": _finding(gate),
        "meaning": _meaning(gate),
    }


def _summary(results: Mapping, gates: list[dict]) -> dict:
    counts = {s: sum(g["status"] == s for g in gates) for s in STATUSES}
    verdict = str(results.get("verdict", "fail" if counts["fail"] else "pass")).lower()
    total = len(gates)
    if verdict == "incomplete":
        headline = "The audit is incomplete: there is no verdict."
        meaning = "Not every configured gate was decided: " + "; ".join(map(str, (results.get("coverage") or {}).get("reasons", [])))
    elif verdict == "fail":
        headline = f"The audit failed: {counts['fail']} of {total} gates failed."
        meaning = ("The measured gender bias is not shown to be within the agreed thresholds in the places listed "
                   "below. A gate compares the end of the estimate's confidence interval named in the gate table with "
                   "its threshold, so it fails both when the bias clearly exceeds the threshold and when the data are "
                   "too uncertain to show that it does not. The gate table gives each threshold and its rationale.")
    else:
        headline = f"The audit passed: {counts['pass']} of {total} gates passed, none failed."
        meaning = ("Every measured bias is within its threshold, judged on the bound of its confidence interval named "
                   "in the gate table, not merely on the point estimate. Passing an audit is not a proof of fairness: "
                   "it covers these items, conditions and thresholds only.")
    notes = []
    if counts["waived"]:
        notes.append(f"{counts['waived']} gate{'s are' if counts['waived'] > 1 else ' is'} waived: a known problem "
                     "accepted for now with the reason given; waived gates do not change the verdict.")
    if counts["skipped"]:
        notes.append(f"{counts['skipped']} gate{'s were' if counts['skipped'] > 1 else ' was'} skipped: not "
                     "measurable for this model or configuration; skipped gates neither pass nor fail.")
    return {"verdict": verdict, "headline": headline, "meaning": meaning, "notes": notes, "counts": counts, "total": total}


# --- Per-model views ------------------------------------------------------------------------------------


def _composition_text(cond: Mapping) -> str:
    comp = cond.get("composition")
    parts = []
    if cond.get("shots"):
        parts.append(f"{cond['shots']} shots")
    if isinstance(comp, Mapping):
        if comp.get("pro_share") is not None:
            parts.append(f"pro-stereotypical {fmt_pct(comp['pro_share'], 0)}")
        if comp.get("occupations") is not None:
            parts.append(f"occupations {comp['occupations']}")
        if comp.get("male_share") is not None:
            parts.append(f"male pronouns {fmt_pct(comp['male_share'], 0)}")
        parts += [f"{k} {fmt_value(v)}" for k, v in comp.items() if k not in ("pro_share", "occupations", "male_share")]
    return ", ".join(parts)


def _composition_label(cond: Mapping) -> str:
    """The composition, short enough for a chart's axis: '4 shots · pro 50% · balanced · male 50%'."""
    comp = cond.get("composition") if isinstance(cond.get("composition"), Mapping) else {}
    parts = [f"{cond['shots']} shots" if cond.get("shots") else "",
             f"pro {fmt_pct(comp['pro_share'], 0)}" if comp.get("pro_share") is not None else "",
             str(comp.get("occupations") or ""),
             f"male {fmt_pct(comp['male_share'], 0)}" if comp.get("male_share") is not None else ""]
    return " \u00b7 ".join(p for p in parts if p)


def _condition_row(name: str, cond: Mapping) -> dict:
    rpa = cond.get("rpa") or {}
    spread = cond.get("seed_spread") or {}
    by_type = rpa.get("by_type") or {}
    return {
        "name": name,
        "description": str(cond.get("description") or ""),
        "probe": str(cond.get("probe") or ""),
        "format": str(cond.get("format") or ""),
        "shots": cond.get("shots", 0) or 0,
        "preprompt": str(cond.get("preprompt") or "none"),
        "chat": bool(cond.get("chat")),
        "composition": _composition_text(cond),
        "n_items": fmt_num(cond.get("n_items")),
        "n_answered": fmt_num(cond.get("n_answered")),
        "other_rate": fmt_pct(cond.get("other_rate")),
        "other_flag": bool(cond.get("other_rate")),
        "a_sb": fmt_num(cond.get("a_sb")),
        "a_sb_ci": fmt_ci(cond.get("a_sb_ci")),
        "rpa_overall": fmt_num(rpa.get("overall")),
        "rpa_pro": fmt_num(rpa.get("pro")),
        "rpa_anti": fmt_num(rpa.get("anti")),
        "rpa_gap": fmt_num(rpa.get("gap")),
        "rpa_gap_ci": fmt_ci(rpa.get("gap_ci")),
        "by_type": [
            {"type": t, **{k: fmt_num((by_type.get(t) or {}).get(k)) for k in ("overall", "pro", "anti", "gap")}}
            for t in sorted(by_type)
        ],
        "seeds": ", ".join(str(s) for s in cond.get("seeds") or []) or "\u2014",
        "a_sb_sd": fmt_num(spread.get("a_sb_sd")),
        "rpa_gap_sd": fmt_num(spread.get("rpa_gap_sd")),
        "has_spread": bool(spread),
    }


def _highlight(sentence: str, pronoun: str) -> Markup:
    """The sentence, escaped, with the first whole-word occurrence of the pronoun in <mark>."""
    match = re.search(rf"\b{re.escape(pronoun)}\b", sentence, flags=re.IGNORECASE) if pronoun else None
    if not match:
        return escape(sentence)
    return (escape(sentence[:match.start()]) + Markup("<mark>") + escape(match.group(0)) + Markup("</mark>")
            + escape(sentence[match.end():]))


def _scores_text(scores: Any) -> str:
    if isinstance(scores, list) and scores:
        return " | ".join(fmt_num(s, 2) for s in scores)
    return ""


def _drill(name: str, rows: Iterable[Mapping], items: Mapping[str, Mapping], anchor: str) -> dict:
    out = []
    for choice in rows:
        item = items.get(str(choice.get("item")), {})
        cands = item.get("candidates") or []
        out.append({
            "id": str(choice.get("item", "")),
            "sentence": _highlight(str(item.get("sentence", "(item not in the record)")), str(item.get("pronoun", ""))),
            "kind": f"T{item.get('type', '?')} {item.get('stance', '')}".strip(),
            "gender": str(item.get("gender", "")),
            "candidates": " / ".join(str(c) for c in cands),
            "referent": str(item.get("referent", "")),
            "selected": "" if choice.get("selected") is None else str(choice["selected"]),
            "correct": bool(choice.get("correct")),
            "scores": _scores_text(choice.get("scores")),
            "output": "" if choice.get("output") is None else str(choice["output"]),
        })
    n_correct = sum(r["correct"] for r in out)
    return {
        "name": name, "anchor": anchor, "rows": out, "n": len(out), "n_correct": n_correct,
        "n_other": sum(r["selected"] == "" for r in out),
        "has_scores": any(r["scores"] for r in out), "has_output": any(r["output"] for r in out),
    }


def _baseline_condition(results: Mapping) -> str:
    """The condition transfer is measured from (the config's ``transfer_from``, formerly ``baseline``; ``intrinsic`` by default)."""
    config = (results.get("provenance") or {}).get("config") or {}
    return str(config.get("transfer_from") or config.get("baseline") or "intrinsic")


def _estimate(value: Any, ci: Any = None, sd: Any = None) -> _charts.Estimate:
    ok = isinstance(ci, (list, tuple)) and len(ci) == 2 and None not in ci
    return _charts.Estimate(value, tuple(ci) if ok else None, sd)


def _model_view(index: int, model: Mapping, occupations: list[dict], items: Mapping, baseline: str = "intrinsic") -> dict:
    name = model["name"]
    anchor = f"m{index}-{slug(name)}"  # section anchors; chart ids stay short (they prefix every SVG id)
    short = f"m{index}"
    conditions: Mapping[str, Mapping] = model["conditions"]
    names = list(conditions)
    intrinsic = (conditions.get(baseline) or {}).get("o_sb")
    extrinsic = [c for c in names if c != baseline]
    occ_pairs = [(o["name"], float(o["pct_women"])) for o in occupations]
    stereotypes = {o["name"]: o.get("stereotype", "") for o in occupations}

    shown = [(c, conditions[c].get("o_sb") or {}) for c in extrinsic] or [(c, conditions[c].get("o_sb") or {}) for c in names]
    osb_charts = _charts.osb_charts(f"{short}-osb", name, occ_pairs, intrinsic, shown) if shown else []
    table_conditions = names
    osb_rows = [
        {"name": o["name"], "pct": fmt_num(float(o["pct_women"]), 1), "stereotype": o.get("stereotype", ""),
         "values": [fmt_num((conditions[c].get("o_sb") or {}).get(o["name"]), 2) for c in table_conditions]}
        for o in occupations
    ]

    transfer = model.get("transfer") or {}
    transfer_rows = [
        {"condition": c, "pearson": fmt_num(t.get("pearson")), "pearson_ci": fmt_ci(t.get("pearson_ci")),
         "spearman": fmt_num(t.get("spearman")), "spearman_ci": fmt_ci(t.get("spearman_ci")),
         "p_value": fmt_num(t.get("p_value")), "n": fmt_num(t.get("n"))}
        for c, t in transfer.items()
    ]
    panels = [_charts.TransferPanel(c, conditions[c].get("o_sb") or {}, transfer.get(c)) for c in extrinsic]
    transfer_charts = (_charts.transfer_charts(f"{short}-transfer", name, intrinsic, stereotypes, panels)
                       if intrinsic is not None and panels else [])

    rpa_chart = _charts.rpa_chart(f"{short}-rpa", name, [(c, conditions[c].get("rpa") or {}) for c in names]) if names else None

    few_shot = [c for c in names if conditions[c].get("composition") or (conditions[c].get("shots") or 0) > 0]
    composition_chart = None
    if few_shot:
        rows = []
        for c in few_shot:
            cond, rpa, spread = conditions[c], conditions[c].get("rpa") or {}, conditions[c].get("seed_spread") or {}
            label = "\n".join(filter(None, (c, _composition_label(cond))))
            rows.append((label, _estimate(cond.get("a_sb"), cond.get("a_sb_ci"), spread.get("a_sb_sd")),
                         _estimate(rpa.get("gap"), rpa.get("gap_ci"), spread.get("rpa_gap_sd"))))
        refs = {r: (conditions[r].get("a_sb"), (conditions[r].get("rpa") or {}).get("gap"))
                for r in (baseline, "zero_shot") if r in conditions}
        composition_chart = _charts.composition_chart(f"{short}-composition", name, rows, refs)

    choices = model.get("choices") or {}
    drills = [_drill(c, choices[c], items, f"{anchor}-items-{k}-{slug(c)}") for k, c in enumerate(choices)]
    identity = model.get("identity") or {}
    return {
        "name": name, "anchor": anchor, "identity": [(k, fmt_value(v)) for k, v in identity.items()],
        "conditions": [_condition_row(c, conditions[c]) for c in names],
        "osb_charts": osb_charts, "osb_conditions": table_conditions, "osb_rows": osb_rows,
        "transfer_rows": transfer_rows, "transfer_charts": transfer_charts,
        "rpa_chart": rpa_chart, "composition_chart": composition_chart,
        "few_shot": [_condition_row(c, conditions[c]) for c in few_shot], "drills": drills,
    }


def _comparison(models: list[Mapping]) -> dict:
    conditions: list[str] = []
    for m in models:
        conditions += [c for c in m["conditions"] if c not in conditions]
    values = []
    for m in models:
        entry = {}
        for c, cond in m["conditions"].items():
            rpa = cond.get("rpa") or {}
            entry[c] = (_estimate(cond.get("a_sb"), cond.get("a_sb_ci")), _estimate(rpa.get("gap"), rpa.get("gap_ci")))
        values.append((m["name"], entry))
    rows = []
    for c in conditions:
        cells = []
        for m in models:
            cond = m["conditions"].get(c)
            rpa = (cond or {}).get("rpa") or {}
            cells.append(None if cond is None else {
                "a_sb": fmt_num(cond.get("a_sb")), "a_sb_ci": fmt_ci(cond.get("a_sb_ci")),
                "gap": fmt_num(rpa.get("gap")), "gap_ci": fmt_ci(rpa.get("gap_ci")), "accuracy": fmt_num(rpa.get("overall")),
            })
        rows.append({"condition": c, "cells": cells})
    chart = _charts.models_chart("cmp", conditions, values) if len(models) > 1 and conditions else None
    return {"models": [m["name"] for m in models], "rows": rows, "chart": chart}


def _provenance(results: Mapping) -> dict:
    prov = results.get("provenance") or {}
    tool = results.get("tool") or {}
    run = [
        ("date (UTC)", fmt_value(results.get("created"))),
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
        "config": json.dumps(prov.get("config"), indent=2, ensure_ascii=False, default=str),
    }


def report_context(results: Mapping) -> dict:
    """Everything the template shows, computed from the record (charts included)."""
    check_results(results)
    occupations = sorted(results["occupations"], key=lambda o: (float(o.get("pct_women", 0)), str(o.get("name", ""))))
    gates = [_gate_view(i, g) for i, g in enumerate(results["gates"])]
    order = {s: i for i, s in enumerate(STATUSES)}
    gates_sorted = sorted(gates, key=lambda g: order[g["status"]])  # stable: the record's order within a status
    models = results["models"]
    tool = results.get("tool") or {}
    return {
        "schema_version": results["schema_version"],
        "created": fmt_value(results.get("created")),
        "tool": f"{tool.get('name', 'bias-transfer-audit')} {tool.get('version', '')}".strip(),
        "summary": _summary(results, gates),
        "attention": [g for g in gates if g["status"] in ("fail", "waived")],
        "skipped": [g for g in gates if g["status"] == "skipped"],
        "gates": gates_sorted,
        "model_names": [m["name"] for m in models],
        "occupations": [{"name": o["name"], "pct": fmt_num(float(o["pct_women"]), 1), "stereotype": o.get("stereotype", "")}
                        for o in occupations],
        "models": [_model_view(i, m, occupations, results["items"], _baseline_condition(results)) for i, m in enumerate(models)],
        "comparison": _comparison(models),
        "provenance": _provenance(results),
        "n_items": len(results["items"]),
    }


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(templates_dir())),
        autoescape=select_autoescape(enabled_extensions=("html", "j2"), default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["slug"] = slug
    return env


def render_report(results: Mapping) -> str:
    """The self-contained HTML report for a results record (schema 1.0)."""
    return _environment().get_template(TEMPLATE).render(**report_context(results))


def write_report(results: Mapping, out_path: str | Path) -> Path:
    """Render the report and write it to ``out_path`` (parent folders created); returns the path."""
    out = Path(out_path)
    from audit.results.atomic import write_atomic

    return write_atomic(out, render_report(results), what="report")  # all or nothing, redacted; OutputError names the file
