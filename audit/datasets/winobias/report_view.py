"""WinoBias's sections of the report, from a results.json record: per model the conditions table, O-SB per
occupation (heatmap and table), the intrinsic-vs-extrinsic transfer (scatter and table), accuracy by type
and stance (RPA), the few-shot compositions and the models side by side, as plain data and declared charts
(``audit.datasets.report_charts``) that the report draws, formats and escapes.

Metrics of Mackraz et al. (2024): O-SB per occupation (positive = picked more often with a male pronoun),
A-SB = mean |O-SB|, RPA by type x stance, transfer = Pearson r of intrinsic vs prompted O-SB.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from audit.datasets.report_charts import BarSeries, DotPlot, GroupedBars, Heatmap, PointGroup, Scatter, ScatterPanel

MAX_SCATTERS = 6  # transfer scatter panels per model; the forest plot and the table show every condition
HEATMAP_COLUMNS = 30  # conditions per O-SB heatmap
SCATTERS_PER_FIGURE = 3
MALE, FEMALE = "#0072B2", "#D55E00"  # blue and vermilion (Okabe & Ito), as the heatmap's diverging scale
RANGES = {"a_sb": (0.0, 1.0), "rpa_gap": (-1.0, 1.0)}  # the range of each charted statistic


def _chunks(seq: Sequence, size: int) -> list[Sequence]:
    return [seq[i:i + size] for i in range(0, len(seq), size)]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _pct(value: Any) -> str:
    return f"{100 * value:.0f}%" if _number(value) and abs(value) != float("inf") else "\u2014"


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


def _transfer_panel(condition: str, intrinsic: Mapping, extrinsic: Mapping, stereotypes: Mapping, stats: Mapping | None) -> ScatterPanel:
    names = [n for n in intrinsic if intrinsic[n] is not None and extrinsic.get(n) is not None]
    groups = [PointGroup(f"{gender}-stereotyped", tuple((intrinsic[n], extrinsic[n]) for n in names
                                                      if stereotypes.get(n) == gender), colour, marker)
              for gender, colour, marker in (("male", MALE, "s"), ("female", FEMALE, "o"))]
    unknown = tuple((intrinsic[n], extrinsic[n]) for n in names if stereotypes.get(n) not in ("male", "female"))
    if unknown:  # a record without the occupation table: the points still count and show
        groups.append(PointGroup("stereotype not recorded", unknown, "#9a9a9a", "D"))
    stats = stats or {}
    return ScatterPanel(condition, "intrinsic O-SB", f"O-SB under {condition}" if len(condition) <= 24 else "extrinsic O-SB",
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
    return tuple({"label": label, "name": name, "range": RANGES[field], "clamp": clamp,
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

