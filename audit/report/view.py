"""What the report shows, computed from a results.json record: the context the template renders.

The executive summary comes from :mod:`.summary`, the gate matrix from :mod:`.matrix`, charts from
:mod:`.charts` and :mod:`.forest`; this module assembles them with the per-model tables, the
item drill-down and the provenance. Everything here is data for an autoescaping template.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from markupsafe import Markup, escape

from . import charts as _charts
from . import forest
from .compare import compare_runs
from .debiasing import debiasing_view
from .declared import draw_declared
from .findings import gate_view, is_task_gate
from .format import fmt_num, fmt_pct, fmt_value, is_number, slug
from .matrix import gate_matrix
from .quantities import Numbers, clip_interval
from audit.datasets.winobias.report_summary import FIELD_LABELS, FIELD_RANGES, PAPERS_TRANSFER_R, noise_floor, paired_changes
from audit.results.io import STATUSES, check_results
from .summary import executive_summary, transfer_reference, unauditable_models

MAX_ITEM_ROWS = 6000  # item rows in the whole page; above it each condition shows its wrong answers first
MIN_DRILL_ROWS = 100  # ... and at least this many rows (the record keeps them all)
MAX_SCATTERS = 6  # transfer scatter panels per model; the forest plot and the table show every condition

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


def _condition_row(model: str, name: str, cond: Mapping, numbers: Numbers) -> dict:
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
        "a_sb": numbers.field(model, name, "a_sb"),
        "a_sb_ci": numbers.ci(cond.get("a_sb_ci"), FIELD_RANGES["a_sb"]),
        "theta": numbers.field(model, name, "debiased_effect"),
        "theta_ci": numbers.ci(cond.get("debiased_effect_ci"), FIELD_RANGES["debiased_effect"]),
        "has_theta": is_number(cond.get("debiased_effect")),
        "rpa_overall": numbers.field(model, name, "rpa_overall"),
        "rpa_pro": fmt_num(rpa.get("pro")),
        "rpa_anti": fmt_num(rpa.get("anti")),
        "rpa_gap": numbers.field(model, name, "rpa_gap"),
        "rpa_gap_ci": numbers.ci(rpa.get("gap_ci"), FIELD_RANGES["rpa_gap"]),
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


def _drill(name: str, rows: Iterable[Mapping], items: Mapping[str, Mapping], anchor: str, limit: int) -> dict:
    rows = [c for c in rows if isinstance(c, Mapping)]
    shown = _shown(rows, limit)
    out = []
    for choice in shown:
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
    return {
        "name": name, "anchor": anchor, "rows": out, "n": len(rows), "n_correct": sum(bool(c.get("correct")) for c in rows),
        "n_hidden": len(rows) - len(out), "n_other": sum(c.get("selected") is None for c in rows),
        "has_scores": any(r["scores"] for r in out), "has_output": any(r["output"] for r in out),
    }


def _estimate(value: Any, ci: Any = None, sd: Any = None, field: str | None = None) -> forest.Estimate:
    """A chart's estimate; its interval inside the statistic's range when ``field`` names it."""
    pair = clip_interval(ci, FIELD_RANGES.get(field) if field else None)
    return forest.Estimate(value, pair, sd)


def _scatter_selection(extrinsic: list[str], transfer: Mapping, limit: int = MAX_SCATTERS) -> list[str]:
    """At most ``limit`` conditions to draw as scatter plots: zero_shot, then the range of r from lowest to highest."""
    if len(extrinsic) <= limit:
        return extrinsic
    ranked = sorted(extrinsic, key=lambda c: ((transfer.get(c) or {}).get("pearson") is None,
                                             (transfer.get(c) or {}).get("pearson") or 0.0))
    picked = ["zero_shot"] if "zero_shot" in extrinsic else []
    for k in range(limit):
        c = ranked[round(k * (len(ranked) - 1) / (limit - 1))]
        if c not in picked and len(picked) < limit:
            picked.append(c)
    return [c for c in extrinsic if c in picked]


def _model_view(index: int, model: Mapping, occupations: list[dict], items: Mapping, baseline: str, limit: int,
                numbers: Numbers) -> dict:
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
        {"condition": c, "pearson": numbers.field(name, c, "pearson"), "pearson_ci": numbers.ci(t.get("pearson_ci"), (-1.0, 1.0)),
         "spearman": numbers.field(name, c, "spearman"), "spearman_ci": numbers.ci(t.get("spearman_ci"), (-1.0, 1.0)),
         "p_value": fmt_num(t.get("p_value")), "n": fmt_num(t.get("n"))}
        for c, t in transfer.items()
    ]
    scattered = _scatter_selection(extrinsic, transfer)
    panels = [_charts.TransferPanel(c, conditions[c].get("o_sb") or {}, transfer.get(c)) for c in scattered]
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
            rows.append((label, _estimate(cond.get("a_sb"), cond.get("a_sb_ci"), spread.get("a_sb_sd"), "a_sb"),
                         _estimate(rpa.get("gap"), rpa.get("gap_ci"), spread.get("rpa_gap_sd"), "rpa_gap")))
        refs = {r: (conditions[r].get("a_sb"), (conditions[r].get("rpa") or {}).get("gap"))
                for r in (baseline, "zero_shot") if r in conditions}
        composition_chart = forest.composition_chart(f"{short}-composition", name, rows, refs)

    choices = model.get("choices") or {}
    drills = [_drill(c, choices[c], items, f"{anchor}-items-{k}-{slug(c)}", limit) for k, c in enumerate(choices)]
    identity = model.get("identity") or {}
    return {
        "name": name, "anchor": anchor, "identity": [(k, fmt_value(v)) for k, v in identity.items()],
        "conditions": [_condition_row(name, c, conditions[c], numbers) for c in names],
        "osb_charts": osb_charts, "osb_conditions": table_conditions, "osb_rows": osb_rows,
        "transfer_rows": transfer_rows, "transfer_charts": transfer_charts,
        "scatter_omitted": [c for c in extrinsic if c not in scattered],
        "rpa_chart": rpa_chart, "composition_chart": composition_chart,
        "few_shot": [_condition_row(name, c, conditions[c], numbers) for c in few_shot], "drills": drills,
    }


def _comparison(models: list[Mapping], numbers: Numbers) -> dict:
    conditions: list[str] = []
    for m in models:
        conditions += [c for c in m["conditions"] if c not in conditions]
    values = []
    for m in models:
        entry = {}
        for c, cond in m["conditions"].items():
            rpa = cond.get("rpa") or {}
            entry[c] = (_estimate(cond.get("a_sb"), cond.get("a_sb_ci"), field="a_sb"),
                        _estimate(rpa.get("gap"), rpa.get("gap_ci"), field="rpa_gap"))
        values.append((m["name"], entry))
    rows = []
    for c in conditions:
        cells = []
        for m in models:
            cond = m["conditions"].get(c)
            rpa = (cond or {}).get("rpa") or {}
            name = str(m["name"])
            cells.append(None if cond is None else {
                "a_sb": numbers.field(name, c, "a_sb"), "a_sb_ci": numbers.ci(cond.get("a_sb_ci"), FIELD_RANGES["a_sb"]),
                "gap": numbers.field(name, c, "rpa_gap"), "gap_ci": numbers.ci(rpa.get("gap_ci"), FIELD_RANGES["rpa_gap"]),
                "accuracy": numbers.field(name, c, "rpa_overall"),
            })
        rows.append({"condition": c, "cells": cells})
    chart = forest.models_chart("cmp", conditions, values) if len(models) > 1 and conditions else None
    return {"models": [m["name"] for m in models], "rows": rows, "chart": chart}


def config_rows(config: Any, prefix: str = "") -> list[tuple[str, str]]:
    """The configuration as (dotted key, value) rows: ``gates.a_sb.threshold = 0.15``; lists as compact JSON."""
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


def _forest(results: Mapping, changes: list[dict]) -> list[dict]:
    """The headline charts: transfer r per condition (papers' value marked), A-SB with noise floor, strategy changes."""
    models = [m for m in results["models"] if isinstance(m, Mapping)]
    order = list(dict.fromkeys(c for m in models for c in m.get("conditions") or {}))
    transfer = [(str(m["name"]), {c: _estimate(t.get("pearson"), t.get("pearson_ci"), field="pearson")
                                  for c, t in (m.get("transfer") or {}).items() if isinstance(t, Mapping)}) for m in models]
    a_sb = [(str(m["name"]), {c: _estimate(v.get("a_sb"), v.get("a_sb_ci"), field="a_sb") for c, v in m["conditions"].items()
                              if isinstance(v, Mapping)}) for m in models]
    bands = {(str(m["name"]), c): noise_floor(v) for m in models for c, v in m["conditions"].items()
             if isinstance(v, Mapping) and noise_floor(v)}
    debiased = [(str(m["name"]), {c: _estimate(v.get("debiased_effect"), v.get("debiased_effect_ci"), field="debiased_effect")
                                  for c, v in m["conditions"].items() if isinstance(v, Mapping) and is_number(v.get("debiased_effect"))})
                for m in models]
    paired = {}
    for c in changes:
        paired.setdefault(c["model"], {})[c["condition"]] = forest.Estimate(c["change"], c["ci"])
    panels = []
    if any(v for _, v in transfer):
        panels.append(forest.ForestPanel(f"{FIELD_LABELS['pearson']}: Pearson r, intrinsic vs condition", transfer,
                                         [forest.Reference(PAPERS_TRANSFER_R, f"papers: r \u2265 {PAPERS_TRANSFER_R} zero/few-shot"),
                                          forest.Reference(0.0, "zero (no transfer, no change)", ":", "#999999")], None,
                                         None, (-1.02, 1.02)))
    panels.append(forest.ForestPanel(f"{FIELD_LABELS['a_sb']} (0 = no gender dependence)", a_sb, [], bands, None))
    if paired:
        panels.append(forest.ForestPanel("paired A-SB change vs zero_shot", list(paired.items()),
                                         [forest.Reference(0.0, "zero (no transfer, no change)", ":", "#999999")]))
    if any(v for _, v in debiased):
        panels.append(forest.ForestPanel(FIELD_LABELS["debiased_effect"], debiased,
                                         [forest.Reference(0.0, "zero (no transfer, no change)", ":", "#999999")]))
    rows = [c for c in order if any(c in v for p in panels for _, v in p.series)]
    if not rows:
        return []
    title = "Transfer, A-SB" + (" and each strategy's paired change" if paired else "") + " per condition"
    return [forest.forest_chart("forest", title, rows, panels)]


def _dataset_part(results: Mapping) -> dict:
    """The recorded dataset's title, sections and their view (``Dataset.report_*``); a generic title and no
    sections when that dataset is not installed here."""
    from audit.datasets import dataset_names, get_dataset
    from audit.datasets.base import Dataset

    name = results.get("dataset") or "winobias"  # records before the dataset key were WinoBias runs
    if not (isinstance(name, str) and name in dataset_names()):
        return {"title": Dataset.report_title, "dataset_sections": [], "dataset_view": {},
                "summary_rules": Dataset.report_summary_rules, "glossary": None}
    dataset = get_dataset(name)
    return {"title": dataset.report_title,
            "dataset_sections": [{"template": t, "anchor": a, "label": label} for t, a, label in dataset.report_sections],
            "dataset_view": draw_declared(dataset.report_view(results)), "summary_rules": dataset.report_summary_rules,
            "glossary": dataset.report_glossary}


def report_context(results: Mapping, approved: Mapping | None = None) -> dict:
    """Everything the template shows, computed from the record (charts included); ``approved`` is the
    earlier run to compare with (``--baseline``), if any."""
    check_results(results)
    if approved is not None:
        check_results(approved, "--baseline")
    occupations = sorted(results.get("occupations") or [], key=lambda o: (float(o.get("pct_women", 0)), str(o.get("name", ""))))
    numbers = Numbers(results)
    gates = [gate_view(i, g, numbers) for i, g in enumerate(results["gates"])]
    order = {s: i for i, s in enumerate(STATUSES)}
    models = results["models"]
    tool = results.get("tool") or {}
    changes = paired_changes(results)
    part = _dataset_part(results)
    statements = executive_summary(results, part.pop("summary_rules"))
    statements = [st for st in statements if not st.empty]
    reference = transfer_reference(results)
    limit = drill_limit([len(v) for m in models for v in (m.get("choices") or {}).values() if isinstance(v, list)])
    model_views = [_model_view(i, m, occupations, results["items"], reference, limit, numbers) for i, m in enumerate(models)]
    present = {"conditions", "rpa", "headline"}
    present |= {"osb"} if any(m["osb_charts"] for m in model_views) else set()
    present |= {"transfer"} if any(m["transfer_charts"] or m["transfer_rows"] for m in model_views) else set()
    present |= {"few-shot"} if any(m["composition_chart"] for m in model_views) else set()
    present |= {"models"} if len(model_views) > 1 else set()
    known = {"conditions", "rpa", "headline", "osb", "transfer", "few-shot", "models"}
    part["dataset_sections"] = [sec for sec in part["dataset_sections"]
                                if sec["anchor"] not in known or sec["anchor"] in present]
    return {
        **part,
        "present": present,
        "schema_version": results["schema_version"],
        "run_id": str(results.get("run_id") or "not recorded"),
        "created": fmt_value(results.get("created")),
        "tool": f"{tool.get('name', 'bias-transfer-audit')} {tool.get('version', '')}".strip(),
        "summary": _counts(results, gates),
        "statements": statements,
        "attention": [g for g in gates if g["status"] in ("fail", "waived", "inconclusive")],
        "gates": sorted(gates, key=lambda g: (g["model"], order.get(g["status"], len(order)))),  # record order within
        "matrix": gate_matrix(models, gates),
        "forest": _forest(results, changes),
        "compare": compare_runs(results, approved) if approved is not None else None,
        "debiasing": debiasing_view(models),
        "model_names": [m["name"] for m in models],
        "occupations": [{"name": o["name"], "pct": fmt_num(float(o["pct_women"]), 1), "stereotype": o.get("stereotype", "")}
                        for o in occupations],
        "models": model_views,
        "comparison": _comparison(models, numbers),
        "labels": FIELD_LABELS,
        "provenance": _provenance(results),
        "n_items": len(results["items"]),
    }
