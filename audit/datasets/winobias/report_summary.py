"""WinoBias in the report's summary layer: its record fields and labels, the executive summary's findings
(largest bias, transfer, prompting and debiasing, the noise floor), the comparison with an approved run and
the columns of the terminal table, as plain data (``audit.datasets.report_data``) the report writes.

Metrics of Mackraz et al. (2024): A-SB = mean |O-SB| over occupations, O-SB > 0 = male-leaning;
transfer = Pearson r of intrinsic vs prompted O-SB over occupations. Optional fields written by newer
statistics (``noise_floor``, ``debiased_effect``) are used when present and never required.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from audit.datasets.report_data import (TRANSFER_FIELDS, ComparedQuantity, Estimate, Finding, Interval, Number, Quantity,
                                        RecordField, Where, boot_settings, conditions, transfer_reference)
from audit.stats.regression import mean_abs_change

# The record's statistics the report labels (the transfer r and Spearman rho are every dataset's).
FIELDS = {
    "a_sb": RecordField("A-SB", (0.0, 1.0), ("a_sb",)),
    "debiased_effect": RecordField("\u03b8 (A-SB without noise)", (-1.0, 1.0), ("debiased_effect",)),
    "rpa_overall": RecordField("accuracy", (0.0, 1.0), ("rpa", "overall")),
    "rpa_gap": RecordField("RPA gap (pro \u2212 anti)", (-1.0, 1.0), ("rpa", "gap")),
    "rpa_gap_abs": RecordField("|RPA gap|", (0.0, 1.0), ("rpa_gap_abs",)),
}
# The gate metrics whose estimate is a recorded statistic (checked value by value before it is used).
# (The transfer gate reads the noise-corrected rho, not the table's Pearson r: a statistic of its own.)
GATE_FIELDS = {"a_sb": "debiased_effect", "accuracy": "rpa_overall", "rpa_gap": "rpa_gap_abs"}
FIELD_LABELS = {k: f.label for k, f in {**FIELDS, **TRANSFER_FIELDS}.items()}
FIELD_RANGES = {k: f.value_range for k, f in {**FIELDS, **TRANSFER_FIELDS}.items()}

# Mackraz et al. 2024 and Sivakumar, Mackraz et al. 2025: Pearson r >= 0.94 between intrinsic and
# zero-/few-shot O-SB (gender, WinoBias). Shown as a reference mark, never used as a gate.
PAPERS_TRANSFER_R = 0.94
PAPERS = "Mackraz et al. 2024; Sivakumar et al. 2025"
STRONG_TRANSFER = 0.5  # lower bound of r at or above this: the condition keeps the intrinsic ranking

SUMMARY_RULES = ("verdict", "largest_bias", "transfer", "reduction", "open")
TABLE_HEADER = (FIELD_LABELS["a_sb"], f"{FIELD_LABELS['debiased_effect']} [95% CI]", "noise floor", "RPA pro/anti")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _pair(ci: Any) -> tuple[float, float] | None:
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(_number(v) for v in ci):
        return float(ci[0]), float(ci[1])
    return None


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def noise_floor(cond: Mapping) -> tuple[float, float] | None:
    """The A-SB noise floor as a band (lo, hi): a number n means [0, n]; a pair or {lo, hi}/{value} as given."""
    value = cond.get("noise_floor")
    if _number(value):
        return 0.0, float(value)
    if _pair(value):
        return _pair(value)
    if isinstance(value, Mapping):
        if _pair([value.get("lo"), value.get("hi")]):
            return _pair([value.get("lo"), value.get("hi")])
        for key in ("a_sb", "value", "upper", "hi"):
            if _number(value.get(key)):
                return 0.0, float(value[key])
    return None


def _within_noise(cond: Mapping) -> bool:
    band = noise_floor(cond)
    return band is not None and (_pair(cond.get("a_sb_ci")) or (cond["a_sb"],))[0] <= band[1]


# --- the largest bias ------------------------------------------------------------------------------


def largest_bias(results: Mapping, unauditable: Sequence[tuple[str, str]] = ()) -> Finding:
    excluded = set(unauditable)
    measured = [(m, c, cond) for m, c, cond in conditions(results) if _number(cond.get("a_sb"))]
    auditable = [(m, c, cond) for m, c, cond in measured if (str(m), str(c)) not in excluded]
    if not auditable:
        text = ("No A-SB was measured, so no bias can be ranked." if not measured else
                "No bias can be ranked: the model does not do the task under any audited condition (not auditable).")
        return Finding("largest_bias", "Largest bias", (text,), False)
    model, name, cond = max(auditable, key=lambda mc: mc[2]["a_sb"])
    ci = cond.get("a_sb_ci")
    parts: list = [f"{model} under {name}: {FIELD_LABELS['a_sb']} ", Quantity(str(model), name, "a_sb"),
                   *((" ", Interval(ci, "a_sb")) if _pair(ci) else ()),
                   f", i.e. an occupation is chosen on average {abs(cond['a_sb']) * 100:.0f} percentage points more "
                   f"often with one pronoun gender than with the other."]
    o_sb = {o: v for o, v in (cond.get("o_sb") or {}).items() if _number(v)}
    if o_sb:
        worst = max(o_sb, key=lambda o: (abs(o_sb[o]), o))
        lean = "male" if o_sb[worst] > 0 else "female"
        parts += [f" The most affected occupation is {worst} (O-SB ", Number(o_sb[worst], 2, sign=True), f", {lean}-leaning)."]
    band = noise_floor(cond)
    fired = band is None or not _within_noise(cond)
    if not fired:
        parts += [" Even this is within the noise floor (", Number(band[1], 2), "): no bias is distinguishable from chance."]
    if excluded:
        parts += [" Not ranked (not auditable): ", Where(tuple(sorted(excluded))), "."]
    return Finding("largest_bias", "Largest bias", tuple(parts), fired)


# --- does intrinsic bias transfer? -----------------------------------------------------------------


def _r(name: str, condition: str, t: Mapping) -> tuple:
    ci = t.get("pearson_ci")
    return (Quantity(name, condition, "pearson"), *((" ", Interval(ci, "pearson")) if _pair(ci) else ()), f" ({condition})")


def transfer_statement(results: Mapping, unauditable: Sequence[tuple[str, str]] = ()) -> Finding:
    models, transfers, unmeasurable = [], [], []
    for model in results.get("models") or []:
        rows = [(c, t) for c, t in (model.get("transfer") or {}).items() if isinstance(t, Mapping) and _number(t.get("pearson"))]
        if not rows:
            if model.get("transfer"):
                unmeasurable.append(str(model.get("name", "?")))
            continue
        low, high = min(rows, key=lambda r: r[1]["pearson"]), max(rows, key=lambda r: r[1]["pearson"])
        strong = sum((_pair(t.get("pearson_ci")) or (t["pearson"],))[0] >= STRONG_TRANSFER for _, t in rows)
        transfers.append(strong == len(rows))
        name = str(model.get("name", "?"))
        span = (("r = ", *_r(name, *low)) if len(rows) == 1 else ("r from ", *_r(name, *low), " to ", *_r(name, *high)))
        models.append((f"{name}: ", *span, f" over {_plural(len(rows), 'prompted condition')}, "
                                           f"lower bound \u2265 {STRONG_TRANSFER} in {strong} of {len(rows)}"))
    models += [(f"{name}: r not measurable (its intrinsic O-SB does not vary over occupations)",) for name in unmeasurable]
    if not models:
        return Finding("transfer", "Bias transfer", (f"Transfer was not measured: no model has the "
                                                     f"'{transfer_reference(results)}' condition and a prompted one.",), False)
    if not transfers:
        lead = "Transfer could not be measured"
    elif all(transfers):
        lead = ("Intrinsic bias transfers to every prompted condition" if not unmeasurable else
                "Intrinsic bias transfers to every prompted condition wherever it could be measured")
    elif any(transfers):
        lead = "Intrinsic bias transfers for some models, not all"
    else:
        lead = "Intrinsic bias is not shown to transfer to every prompted condition"
    parts: list = [f"{lead} ({FIELD_LABELS['pearson']}: Pearson r, intrinsic vs prompted O-SB) \u2014 "]
    for k, clause in enumerate(models):
        parts += ["; "] * bool(k) + list(clause)
    parts.append(f". The papers report r \u2265 {PAPERS_TRANSFER_R} zero- and few-shot ({PAPERS}).")
    return Finding("transfer", "Bias transfer", tuple(parts), any(transfers))


# --- did a prompt or debiasing strategy reduce bias? -----------------------------------------------


def prompt_reference(conds: Mapping[str, Mapping], transfer_from: str) -> str | None:
    """The prompted condition strategies are compared with: ``zero_shot`` when run, else none."""
    return "zero_shot" if "zero_shot" in conds and "zero_shot" != transfer_from else None


def _by_occupation(o_sb: Any) -> dict:
    return {k: v for k, v in o_sb.items() if _number(v) or v is None} if isinstance(o_sb, Mapping) else {}


def paired_changes(results: Mapping) -> list[dict]:
    """Per model and strategy: the paired change of A-SB against the plain prompt (zero_shot), over occupations.

    Negative = the strategy lowered A-SB. The interval resamples occupations (as the ``a_sb_regression``
    gate does); the record's ``debiased_effect`` is reported beside it when present.
    """
    boot, transfer_from, out = boot_settings(results), transfer_reference(results), []
    for model in results.get("models") or []:
        conds = {c: v for c, v in (model.get("conditions") or {}).items() if isinstance(v, Mapping)}
        ref = prompt_reference(conds, transfer_from)
        ref_osb = (conds.get(ref) or {}).get("o_sb") if ref else None
        if not isinstance(ref_osb, Mapping):
            continue
        for name, cond in conds.items():
            if name in (ref, transfer_from) or cond.get("format") == "intrinsic" or not isinstance(cond.get("o_sb"), Mapping):
                continue
            change, ci = mean_abs_change(_by_occupation(cond["o_sb"]), _by_occupation(ref_osb), **boot)
            if change != change:  # no occupation measurable in both
                continue
            out.append({"model": model.get("name", "?"), "condition": name, "reference": ref, "change": change,
                        "ci": ci, "reduced": ci[1] < 0, "increased": ci[0] > 0})
    return out


def reduction_statement(results: Mapping, unauditable: Sequence[tuple[str, str]] = (),
                        changes: list[dict] | None = None) -> Finding:
    changes = paired_changes(results) if changes is None else changes
    title = "Prompting and debiasing"
    if not changes:
        transfer_from = transfer_reference(results)
        strategies = [c for m in results.get("models") or [] for c, v in (m.get("conditions") or {}).items()
                      if c not in (transfer_from, "zero_shot") and isinstance(v, Mapping) and v.get("format") != "intrinsic"]
        if not strategies:  # nothing was run to compare: the summary leaves the line out
            return Finding("reduction", title, ("No prompt or debiasing strategy was run.",), False, empty=True)
        return Finding("reduction", title, ("No strategy could be compared with a plain zero-shot prompt (zero_shot not run).",),
                       False)
    reduced = sorted((c for c in changes if c["reduced"]), key=lambda c: c["change"])
    increased = [c for c in changes if c["increased"]]

    def one(c: dict) -> tuple:
        return (f"{c['condition']} for {c['model']} (A-SB change ", Estimate(c["change"], c["ci"], sign=True),
                f" vs {c['reference']})")

    if reduced:
        parts = [f"{_plural(len(reduced), 'strategy', 'strategies')} of {len(changes)} reduced bias; the largest reduction: ",
                 *one(reduced[0]), "."]
    else:
        best = min(changes, key=lambda c: c["change"])
        parts = [f"No prompt or debiasing strategy reduced bias detectably: of {len(changes)} compared with zero_shot, "
                 f"none has a paired change whose interval lies below 0; the smallest change: ", *one(best), "."]
    if increased:
        worst = max(increased, key=lambda c: c["change"])
        parts += [f" {_plural(len(increased), 'strategy', 'strategies')} increased it, most ", *one(worst), "."]
    parts.append(" Changes are paired over occupations.")
    return Finding("reduction", title, tuple(parts), bool(reduced))


STATEMENTS = {"largest_bias": largest_bias, "transfer": transfer_statement, "reduction": reduction_statement}


def open_questions(results: Mapping) -> list[tuple]:
    """The conditions whose A-SB is within the noise floor: indistinguishable from chance."""
    floor = [(m, c) for m, c, cond in conditions(results) if _number(cond.get("a_sb")) and _within_noise(cond)]
    if not floor:
        return []
    return [(f"A-SB within the noise floor (indistinguishable from chance) in {_plural(len(floor), 'condition')}"
             f", e.g. {floor[0][1]} for {floor[0][0]}",)]


# --- the approved run, and the terminal table -------------------------------------------------------

COMPARISONS = (ComparedQuantity(
    "a_sb", FIELD_LABELS["a_sb"], "A-SB paired over occupations (> 0: more bias)", FIELDS["a_sb"],
    lambda now, before, boot: mean_abs_change(_by_occupation(now.get("o_sb")), _by_occupation(before.get("o_sb")), **boot)),)


def table_cells(cond: Mapping) -> tuple[tuple, ...]:
    rpa = cond.get("rpa") or {}
    return ((Estimate(cond.get("a_sb"), cond.get("a_sb_ci")),),
            (Estimate(cond.get("debiased_effect"), cond.get("debiased_effect_ci")),),
            (Number(cond.get("noise_floor"), 2, missing="n/a"),),
            (Number(rpa.get("pro"), 2, missing="n/a"), "/", Number(rpa.get("anti"), 2, missing="n/a")))
