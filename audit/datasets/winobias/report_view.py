"""WinoBias's sections of the report, from a results.json record: per model the conditions table, O-SB per
occupation (heatmap and table), the intrinsic-vs-extrinsic transfer (scatter and table), accuracy by type
and stance (RPA), the few-shot compositions and the models side by side, as plain data and declared charts
(``audit.datasets.report_charts``) that the report draws, formats and escapes.

Metrics of Mackraz et al. (2024): O-SB per occupation (positive = picked more often with a male pronoun),
A-SB = mean |O-SB|, RPA by type x stance, transfer = Pearson r of intrinsic vs prompted O-SB.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from audit.datasets.report_charts import (BarSeries, DotPlot, EstimatesChart, GroupedBars, Heatmap, PointGroup, Scatter,
                                         PointsPanel)
from audit.datasets.report_data import Interval, Number, Percent, Quantity, transfer_reference
from audit.datasets.winobias.report_summary import FIELD_LABELS, FIELD_RANGES, PAPERS_TRANSFER_R, noise_floor, paired_changes

MAX_SCATTERS = 6  # transfer scatter panels per model; the forest plot and the table show every condition
HEATMAP_COLUMNS = 30  # conditions per O-SB heatmap
SCATTERS_PER_FIGURE = 3
MALE, FEMALE = "#0072B2", "#D55E00"  # blue and vermilion (Okabe & Ito), as the heatmap's diverging scale


def _chunks(seq: Sequence, size: int) -> list[Sequence]:
    return [seq[i:i + size] for i in range(0, len(seq), size)]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _pct(value: Any) -> str:
    return f"{100 * value:.0f}%" if _finite(value) else "\u2014"


def _triple(value: Any, ci: Any, sd: Any = None) -> tuple:
    lo, hi = ci if isinstance(ci, (list, tuple)) and len(ci) == 2 else (None, None)
    return (value, lo, hi) if sd is None else (value, lo, hi, sd)


def sorted_occupations(results: Mapping) -> list[Mapping]:
    """The record's occupations from the lowest to the highest share of women (then by name)."""
    return sorted(results.get("occupations") or [], key=lambda o: (float(o.get("pct_women", 0)), str(o.get("name", ""))))


# --- Few-shot composition ------------------------------------------------------------------------------


def _value(value: Any) -> str:
    """A knob's value as the provenance writes it: structures as compact JSON, null as 'none'."""
    if value is None:
        return "none"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return f"{value:.4f}" if isinstance(value, float) and value == value else str(value)


def composition_text(cond: Mapping) -> str:
    """'4 shots, pro-stereotypical 50%, occupations balanced, male pronouns 50%'."""
    comp = cond.get("composition")
    parts = []
    if cond.get("shots"):
        parts.append(f"{cond['shots']} shots")
    if isinstance(comp, Mapping):
        if comp.get("pro_share") is not None:
            parts.append(f"pro-stereotypical {_pct(comp['pro_share'])}")
        if comp.get("occupations") is not None:
            parts.append(f"occupations {comp['occupations']}")
        if comp.get("male_share") is not None:
            parts.append(f"male pronouns {_pct(comp['male_share'])}")
        parts += [f"{k} {_value(v)}" for k, v in comp.items() if k not in ("pro_share", "occupations", "male_share")]
    return ", ".join(parts)


def composition_label(cond: Mapping) -> str:
    """The composition, short enough for a chart's axis: '4 shots · pro 50% · balanced · male 50%'."""
    comp = cond.get("composition") if isinstance(cond.get("composition"), Mapping) else {}
    parts = [f"{cond['shots']} shots" if cond.get("shots") else "",
             f"pro {_pct(comp['pro_share'])}" if comp.get("pro_share") is not None else "",
             str(comp.get("occupations") or ""),
             f"male {_pct(comp['male_share'])}" if comp.get("male_share") is not None else ""]
    return " \u00b7 ".join(p for p in parts if p)


def is_few_shot(cond: Mapping) -> bool:
    return bool(cond.get("composition") or (cond.get("shots") or 0) > 0)


# --- Charts ----------------------------------------------------------------------------------------------


def _extremes(o_sb: Mapping[str, float | None]) -> str:
    known = {k: v for k, v in o_sb.items() if v is not None}
    if not known:
        return "no occupation measurable"
    male = max(known, key=known.__getitem__)
    female = min(known, key=known.__getitem__)
    return f"most male-leaning {male} ({known[male]:+.2f}), most female-leaning {female} ({known[female]:+.2f})"


def osb_heatmaps(chart_id: str, model: str, occupations: Sequence[Mapping], intrinsic: Mapping | None,
                 conditions: Sequence[tuple[str, Mapping]]) -> list[Heatmap]:
    """O-SB of every occupation (rows, by share of women) under every condition (columns), intrinsic first;
    blue is male-leaning (O-SB > 0), vermilion female-leaning. One compact chart per 30 conditions replaces
    a bar panel per condition: at study scale (25 conditions) one figure instead of nine."""
    names = [str(o["name"]) for o in occupations]
    if not names:  # no occupations: no chart, and no empty axes with identical limits
        return []
    shares = [float(o["pct_women"]) for o in occupations]
    columns = ([("intrinsic", intrinsic)] if intrinsic is not None else []) + [
        (c, o) for c, o in conditions if not (intrinsic is not None and c == "intrinsic")]
    parity = next((i for i, pct in enumerate(shares) if pct >= 50), None)
    charts = []
    for k, chunk in enumerate(_chunks(columns, HEATMAP_COLUMNS)):
        listed = ", ".join(c for c, _ in chunk)
        alt = [f"Heatmap of occupational selection bias (O-SB) for {len(names)} occupations (rows, from the lowest to "
               f"the highest share of women; dashed line: 50% women) under {len(chunk)} conditions (columns: {listed}), "
               f"model {model}; blue is male-leaning, vermilion female-leaning."]
        alt += [f"{c}: {_extremes(o)}." for c, o in chunk]
        charts.append(Heatmap(
            f"{chart_id}-{k}", f"O-SB per occupation and condition, {model}", " ".join(alt),
            tuple(f"{name} ({pct:g}%)" for name, pct in zip(names, shares)), tuple(c for c, _ in chunk),
            tuple(tuple(o.get(n) for _, o in chunk) for n in names),
            "O-SB  (female-leaning < 0 < male-leaning)", (-1.0, 1.0), parity))
    return charts


def scatter_selection(extrinsic: list[str], transfer: Mapping, limit: int = MAX_SCATTERS) -> list[str]:
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


def _transfer_panel(condition: str, intrinsic: Mapping, extrinsic: Mapping, stereotypes: Mapping, stats: Mapping | None) -> PointsPanel:
    names = [n for n in intrinsic if intrinsic[n] is not None and extrinsic.get(n) is not None]
    groups = [PointGroup(f"{gender}-stereotyped", tuple((intrinsic[n], extrinsic[n]) for n in names
                                                      if stereotypes.get(n) == gender), colour, marker)
              for gender, colour, marker in (("male", MALE, "s"), ("female", FEMALE, "o"))]
    unknown = tuple((intrinsic[n], extrinsic[n]) for n in names if stereotypes.get(n) not in ("male", "female"))
    if unknown:  # a record without the occupation table: the points still count and show
        groups.append(PointGroup("stereotype not recorded", unknown, "#9a9a9a", "D"))
    stats = stats or {}
    return PointsPanel(condition, "intrinsic O-SB", f"O-SB under {condition}" if len(condition) <= 24 else "extrinsic O-SB",
                        tuple(groups), (("Pearson r", stats.get("pearson"), stats.get("pearson_ci")),
                                        ("Spearman \u03c1", stats.get("spearman"), stats.get("spearman_ci"))),
                        stats.get("n", len(names)))


def transfer_scatters(chart_id: str, model: str, intrinsic: Mapping, stereotypes: Mapping,
                      panels: Sequence[tuple[str, Mapping, Mapping | None]]) -> list[Scatter]:
    """Intrinsic vs extrinsic O-SB over occupations, one panel per (condition, O-SB, transfer entry)."""
    return [Scatter(f"{chart_id}-{k}", f"Bias transfer, {model}: intrinsic vs " + ", ".join(c for c, _, _ in chunk),
                    f"Scatter plots of intrinsic O-SB (x) against extrinsic O-SB (y) per occupation, model {model}, "
                    "with the least-squares line and the diagonal y = x.",
                    tuple(_transfer_panel(c, intrinsic, o_sb, stereotypes, stats) for c, o_sb, stats in chunk), (-1.0, 1.0))
            for k, chunk in enumerate(_chunks(list(panels), SCATTERS_PER_FIGURE))]


def rpa_bars(chart_id: str, model: str, conditions: Sequence[tuple[str, Mapping]]) -> GroupedBars:
    """Accuracy per condition for type 1 / type 2 x pro / anti (WinoBias's four blocks)."""
    styles = (("1", "pro", "#0072B2", None), ("1", "anti", "#9cc3e0", "///"),
              ("2", "pro", "#E69F00", None), ("2", "anti", "#f5d28a", "///"))
    series = tuple(BarSeries(f"type {t}, {stance}", tuple(((rpa.get("by_type") or {}).get(t) or {}).get(stance)
                                                         for _, rpa in conditions), colour, hatch)
                   for t, stance, colour, hatch in styles)
    return GroupedBars(chart_id, f"Accuracy by type and stance, {model}",
                       f"Grouped bar chart of accuracy by WinoBias type and stance per condition, model {model}.",
                       tuple(c for c, _ in conditions), series, "accuracy", (0.0, 1.05), (0.5, "chance (0.5)"))


def _dot_panels(series: Mapping[str, Mapping[str, tuple]], clamp: bool, references: Mapping[str, tuple] = {}) -> tuple:
    styles = (("#555555", ":"), ("#000000", "--"))
    return tuple({"label": label, "name": name, "range": FIELD_RANGES[field], "clamp": clamp,
                  "series": {s: {row: v[col] for row, v in values.items()} for s, values in series.items()},
                  "references": tuple((values[col], ref, style, colour)
                                      for (ref, values), (colour, style) in zip(references.items(), styles))}
                 for col, (field, label, name) in enumerate((("a_sb", "A-SB", "A-SB"),
                                                            ("rpa_gap", "RPA gap (pro - anti)", "RPA gap"))))


def composition_chart(chart_id: str, model: str, conditions: Mapping[str, Mapping], few_shot: Sequence[str],
                      references: Sequence[str]) -> DotPlot:
    """A-SB and RPA gap of each few-shot condition (labelled by its shot composition), with intervals and
    seed spreads; the ``references`` conditions' values (intrinsic, zero_shot) as vertical lines."""
    rows = {}
    for c in few_shot:
        cond, rpa, spread = conditions[c], conditions[c].get("rpa") or {}, conditions[c].get("seed_spread") or {}
        label = "\n".join(filter(None, (c, composition_label(cond))))
        rows[label] = (_triple(cond.get("a_sb"), cond.get("a_sb_ci"), spread.get("a_sb_sd")),
                       _triple(rpa.get("gap"), rpa.get("gap_ci"), spread.get("rpa_gap_sd")))
    refs = {r: (conditions[r].get("a_sb"), (conditions[r].get("rpa") or {}).get("gap")) for r in references}
    return DotPlot(chart_id, f"Few-shot composition effects, {model}",
                   f"Dot plots with confidence intervals of A-SB and RPA gap for each few-shot composition, model {model}.",
                   tuple(rows), _dot_panels({"few-shot (seed sd in the table)": rows}, True, refs), 0.55, None)


def models_chart(chart_id: str, conditions: Sequence[str], models: Sequence[Mapping]) -> DotPlot:
    """A-SB and RPA gap per condition, one colour and marker per model, side by side."""
    series = {}
    for m in models:
        entry = {}
        for c, cond in m["conditions"].items():
            rpa = cond.get("rpa") or {}
            entry[c] = (_triple(cond.get("a_sb"), cond.get("a_sb_ci")), _triple(rpa.get("gap"), rpa.get("gap_ci")))
        series[str(m["name"])] = entry
    return DotPlot(chart_id, "Models side by side: A-SB and RPA gap per condition",
                   f"Dot plots with confidence intervals of A-SB and RPA gap per condition for {len(models)} models side by side.",
                   tuple(conditions), _dot_panels(series, False), 0.24 * max(len(models), 2), 28)


# --- Items ------------------------------------------------------------------------------------------------


def item_row(item: Mapping) -> dict:
    """An item as the drill-down shows it: its sentence with the pronoun marked, its block, its referent."""
    return {"text": str(item.get("sentence", "(item not in the record)")), "mark": str(item.get("pronoun", "")),
            "block": f"T{item.get('type', '?')} {item.get('stance', '')}".strip(), "gold": str(item.get("referent", ""))}



# --- The headline: transfer, A-SB and each strategy's paired change per condition ----------------------------


def headline_forest(results: Mapping) -> list[EstimatesChart]:
    """The papers' headline at a glance: transfer r per condition (the papers' value marked), A-SB with its
    noise floor, each strategy's paired A-SB change against zero_shot and the debiased effect, one marker per model."""
    models = [m for m in results["models"] if isinstance(m, Mapping)]
    order = list(dict.fromkeys(c for m in models for c in m.get("conditions") or {}))
    zero = (0.0, "zero (no transfer, no change)", ":", "#999999")
    transfer = {str(m["name"]): {c: _triple(t.get("pearson"), t.get("pearson_ci")) for c, t in (m.get("transfer") or {}).items()
                                 if isinstance(t, Mapping)} for m in models}
    a_sb = {str(m["name"]): {c: _triple(v.get("a_sb"), v.get("a_sb_ci")) for c, v in m["conditions"].items()
                             if isinstance(v, Mapping)} for m in models}
    bands = {str(m["name"]): {c: noise_floor(v) for c, v in m["conditions"].items() if isinstance(v, Mapping) and noise_floor(v)}
             for m in models}
    debiased = {str(m["name"]): {c: _triple(v.get("debiased_effect"), v.get("debiased_effect_ci")) for c, v in m["conditions"].items()
                                 if isinstance(v, Mapping) and _finite(v.get("debiased_effect"))} for m in models}
    paired: dict = {}
    for change in paired_changes(results):
        paired.setdefault(str(change["model"]), {})[change["condition"]] = _triple(change["change"], change["ci"])
    panels = []
    if any(transfer.values()):
        panels.append({"label": f"{FIELD_LABELS['pearson']}: Pearson r, intrinsic vs condition", "series": transfer,
                       "references": ((PAPERS_TRANSFER_R, f"papers: r \u2265 {PAPERS_TRANSFER_R} zero/few-shot", "--", "#555555"), zero),
                       "range": FIELD_RANGES["pearson"], "clamp": (-1.02, 1.02)})
    panels.append({"label": f"{FIELD_LABELS['a_sb']} (0 = no gender dependence)", "series": a_sb, "bands": bands,
                   "range": FIELD_RANGES["a_sb"]})
    if paired:
        panels.append({"label": "paired A-SB change vs zero_shot", "series": paired, "references": (zero,)})
    if any(debiased.values()):
        panels.append({"label": FIELD_LABELS["debiased_effect"], "series": debiased, "references": (zero,),
                       "range": FIELD_RANGES["debiased_effect"]})
    rows = [c for c in order if any(c in v for p in panels for v in p["series"].values())]
    if not rows:
        return []
    title = "Transfer, A-SB" + (" and each strategy's paired change" if paired else "") + " per condition"
    return [EstimatesChart("forest", title, tuple(rows), tuple(panels), row_noun="condition", series_noun="model")]


# --- Tables ------------------------------------------------------------------------------------------------


def _condition_row(model: str, name: str, cond: Mapping) -> dict:
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
        "composition": composition_text(cond),
        "n_items": Number(cond.get("n_items")),
        "n_answered": Number(cond.get("n_answered")),
        "other_rate": Percent(cond.get("other_rate")),
        "other_flag": bool(cond.get("other_rate")),
        "a_sb": Quantity(model, name, "a_sb"),
        "a_sb_ci": Interval(cond.get("a_sb_ci"), "a_sb"),
        "theta": Quantity(model, name, "debiased_effect"),
        "theta_ci": Interval(cond.get("debiased_effect_ci"), "debiased_effect"),
        "has_theta": _finite(cond.get("debiased_effect")),
        "rpa_overall": Quantity(model, name, "rpa_overall"),
        "rpa_pro": Number(rpa.get("pro")),
        "rpa_anti": Number(rpa.get("anti")),
        "rpa_gap": Quantity(model, name, "rpa_gap"),
        "rpa_gap_ci": Interval(rpa.get("gap_ci"), "rpa_gap"),
        "by_type": [{"type": t, **{k: Number((by_type.get(t) or {}).get(k)) for k in ("overall", "pro", "anti", "gap")}}
                    for t in sorted(by_type)],
        "seeds": ", ".join(str(s) for s in cond.get("seeds") or []) or "\u2014",
        "a_sb_sd": Number(spread.get("a_sb_sd")),
        "rpa_gap_sd": Number(spread.get("rpa_gap_sd")),
        "has_spread": bool(spread),
    }


def _model_view(index: int, model: Mapping, occupations: list[Mapping], baseline: str) -> dict:
    name = model["name"]
    short = f"m{index}"  # chart ids stay short (they prefix every SVG id); the page's anchors are the report's
    conditions: Mapping[str, Mapping] = model["conditions"]
    names = list(conditions)
    intrinsic = (conditions.get(baseline) or {}).get("o_sb")
    extrinsic = [c for c in names if c != baseline]
    stereotypes = {o["name"]: o.get("stereotype", "") for o in occupations}
    shown = [(c, conditions[c].get("o_sb") or {}) for c in extrinsic] or [(c, conditions[c].get("o_sb") or {}) for c in names]
    transfer = model.get("transfer") or {}
    scattered = scatter_selection(extrinsic, transfer)
    panels = [(c, conditions[c].get("o_sb") or {}, transfer.get(c)) for c in scattered]
    few_shot = [c for c in names if is_few_shot(conditions[c])]
    return {
        "index": index, "name": name,
        "conditions": [_condition_row(name, c, conditions[c]) for c in names],
        "osb_charts": osb_heatmaps(f"{short}-osb", name, occupations, intrinsic, shown) if shown else [],
        "osb_conditions": names,
        "osb_rows": [{"name": o["name"], "pct": Number(float(o["pct_women"]), 1), "stereotype": o.get("stereotype", ""),
                      "values": [Number((conditions[c].get("o_sb") or {}).get(o["name"]), 2) for c in names]}
                     for o in occupations],
        "transfer_rows": [{"condition": c, "pearson": Quantity(name, c, "pearson"), "pearson_ci": Interval(t.get("pearson_ci"), "pearson"),
                           "spearman": Quantity(name, c, "spearman"), "spearman_ci": Interval(t.get("spearman_ci"), "spearman"),
                           "p_value": Number(t.get("p_value")), "n": Number(t.get("n"))}
                          for c, t in transfer.items()],
        "transfer_charts": transfer_scatters(f"{short}-transfer", name, intrinsic, stereotypes, panels)
        if intrinsic is not None and panels else [],
        "scatter_omitted": [c for c in extrinsic if c not in scattered],
        "rpa_chart": rpa_bars(f"{short}-rpa", name, [(c, conditions[c].get("rpa") or {}) for c in names]) if names else None,
        "composition_chart": composition_chart(f"{short}-composition", name, conditions, few_shot,
                                               [r for r in (baseline, "zero_shot") if r in conditions]) if few_shot else None,
        "few_shot": [_condition_row(name, c, conditions[c]) for c in few_shot],
    }


def _comparison(models: list[Mapping]) -> dict:
    conditions: list[str] = []
    for m in models:
        conditions += [c for c in m["conditions"] if c not in conditions]
    rows = []
    for c in conditions:
        cells = []
        for m in models:
            cond, name = m["conditions"].get(c), str(m["name"])
            cells.append(None if cond is None else {
                "a_sb": Quantity(name, c, "a_sb"), "a_sb_ci": Interval(cond.get("a_sb_ci"), "a_sb"),
                "gap": Quantity(name, c, "rpa_gap"), "gap_ci": Interval((cond.get("rpa") or {}).get("gap_ci"), "rpa_gap"),
                "accuracy": Quantity(name, c, "rpa_overall"),
            })
        rows.append({"condition": c, "cells": cells})
    chart = models_chart("cmp", conditions, models) if len(models) > 1 and conditions else None
    return {"models": [m["name"] for m in models], "rows": rows, "chart": chart}


def report_view(results: Mapping) -> dict:
    """WinoBias's sections (``WinoBias.report_sections``) from a record: the headline forest plot, per model
    its tables and charts, the models side by side; ``hidden``: the sections with nothing to show."""
    occupations = sorted_occupations(results)
    reference = transfer_reference(results)
    models = [_model_view(i, m, occupations, reference) for i, m in enumerate(results["models"])]
    hidden = [anchor for anchor, shown in (("osb", any(m["osb_charts"] for m in models)),
                                           ("transfer", any(m["transfer_charts"] or m["transfer_rows"] for m in models)),
                                           ("few-shot", any(m["composition_chart"] for m in models)),
                                           ("models", len(models) > 1)) if not shown]
    return {"forest": headline_forest(results), "models": models, "comparison": _comparison(results["models"]),
            "hidden": hidden}
