"""``bias-audit data validate`` for BBQ: a structured report of what the data holds and what is wrong.

Checks (Parrish et al. 2022, section 3; the upstream analysis scripts):
* counts per category (against the official counts when the category is the official file);
* the balance of context condition (ambig/disambig) x question polarity (neg/nonneg);
* in an ambiguous context the correct answer is the unknown answer, in a disambiguated one it is not;
* exactly one biased answer per example, by polarity (:mod:`.targets`); examples whose target is
  unclear are *reported* (the upstream bias score drops them), not silently kept;
* unique example ids per category.

``errors`` make the data unfit (non-zero exit); ``target_unclear`` and ``warnings`` are reported.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Iterable, Mapping

from .items import CONDITIONS, POLARITIES, BBQItem
from .official import OFFICIAL_COUNTS

CELLS = tuple(f"{c}/{p}" for c in CONDITIONS for p in POLARITIES)
MAX_LISTED = 50  # errors listed per category (the count is always complete)


def _check_item(item: BBQItem) -> str | None:
    if item.context_condition == "ambig" and item.label != item.unknown_index:
        return "ambiguous context whose label is not the unknown answer"
    if item.context_condition == "disambig" and item.label == item.unknown_index:
        return "disambiguated context whose label is the unknown answer"
    if len(set(item.answers)) != 3:
        return "two answers are the same text"
    return None


def validate_category(category: str, items: list[BBQItem]) -> dict:
    cells = Counter(f"{i.context_condition}/{i.question_polarity}" for i in items)
    errors, unclear, warnings = [], [], []
    seen: dict[int, str] = {}
    for item in items:
        problem = _check_item(item)
        if problem:
            errors.append(f"{item.source}: {problem}")
        if item.example_id in seen:
            errors.append(f"{item.source}: example_id {item.example_id} repeats {seen[item.example_id]}")
        seen.setdefault(item.example_id, item.source)
        if item.category != category:
            errors.append(f"{item.source}: category {item.category!r} in the {category} data")
        if item.target_unclear:
            matches = item.metadata.get("stereotyped_matches", 0)
            unclear.append({
                "example_id": item.example_id, "source": item.source, "question_index": item.question_index,
                "reason": "no answer names a stereotyped group" if matches == 0
                else f"{matches} answers name a stereotyped group",
                "answer_groups": list(item.answer_groups), "stereotyped_groups": list(item.stereotyped_groups),
            })
    balance = {cell: cells.get(cell, 0) for cell in CELLS}
    shares = {cell: round(100 * n / len(items), 2) if items else 0.0 for cell, n in balance.items()}
    balanced = bool(items) and len(set(balance.values())) == 1
    if not balanced:
        errors.append(f"{category}: ambig/disambig x neg/nonneg not balanced {balance}")
    regenerated = any(i.regenerated for i in items)
    expected = None if regenerated else OFFICIAL_COUNTS.get(category)
    if expected is not None and expected != len(items):
        warnings.append(f"{category}: {len(items)} examples, the official file has {expected}")
    per_template: dict[int, Counter] = defaultdict(Counter)
    for item in items:
        per_template[item.question_index][f"{item.context_condition}/{item.question_polarity}"] += 1
    unbalanced_templates = sorted(q for q, c in per_template.items() if len({c[cell] for cell in CELLS}) != 1)
    if unbalanced_templates:
        errors.append(f"{category}: templates {unbalanced_templates} not balanced across the four cells")
    return {
        "examples": len(items),
        "expected": expected,
        "regenerated": regenerated,
        "templates": len(per_template),
        "balance": balance,
        "balance_percent": shares,
        "balanced": balanced,
        "label_is_unknown_in_ambig": all(i.label == i.unknown_index for i in items if i.context_condition == "ambig"),
        "one_biased_answer": sum(1 for i in items if not i.target_unclear),
        "target_unclear": unclear,
        "error_count": len(errors),
        "errors": errors[:MAX_LISTED],
        "warnings": warnings,
    }


def validate(data: Mapping[str, Iterable[BBQItem]]) -> dict:
    """Validate ``{category: items}``; returns the structured report (JSON-ready)."""
    categories = {c: validate_category(c, list(items)) for c, items in data.items()}
    return {
        "dataset": "bbq",
        "examples": sum(c["examples"] for c in categories.values()),
        "categories_count": len(categories),
        "categories": categories,
        "errors": sum(c["error_count"] for c in categories.values()),
        "target_unclear": sum(len(c["target_unclear"]) for c in categories.values()),
        "regenerated": sorted(c for c, r in categories.items() if r["regenerated"]),
        "ok": all(c["error_count"] == 0 for c in categories.values()),
    }


def render_text(report: dict) -> str:
    """A plain-text rendering of :func:`validate`'s report."""
    lines = [f"BBQ: {report['examples']:,} examples in {report['categories_count']} categories, "
             f"{report['errors']} errors, {report['target_unclear']} with an unclear target"]
    header = f"  {'category':<22}{'examples':>9}  " + "  ".join(f"{c:>15}" for c in CELLS) + "  source"
    lines.append(header)
    for name, cat in report["categories"].items():
        cells = "  ".join(f"{cat['balance'][c]:>7} ({cat['balance_percent'][c]:>4.1f}%)" for c in CELLS)
        origin = "regenerated from templates" if cat["regenerated"] else "official file"
        lines.append(f"  {name:<22}{cat['examples']:>9,}  {cells}  {origin}")
    for name, cat in report["categories"].items():
        for error in cat["errors"]:
            lines.append(f"  error: {error}")
        if cat["error_count"] > len(cat["errors"]):
            lines.append(f"  ... {cat['error_count'] - len(cat['errors'])} more errors in {name}")
        for warning in cat["warnings"]:
            lines.append(f"  warning: {warning}")
        for entry in cat["target_unclear"]:
            lines.append(f"  target unclear: {entry['source']} (example {entry['example_id']}, "
                         f"template {entry['question_index']}): {entry['reason']}")
    lines.append("OK" if report["ok"] else "FAILED")
    return "\n".join(lines)
