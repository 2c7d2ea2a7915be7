"""Plain-text and Markdown views of results.json: the papers' table of transfer per condition, and
the gate summary (for the terminal and for GitHub's step summary)."""

from __future__ import annotations

from collections.abc import Mapping

from audit.datasets.report_data import TRANSFER_FIELDS

from .format import fmt_estimate, fmt_num, fmt_pct
from .recorded import record_dataset
from .written import plain


def _est(value, ci, sign: bool = False) -> str:
    return fmt_estimate(value, ci, 2, sign=sign)


def transfer_header(results: Mapping) -> list[str]:
    """model, condition, the record's dataset's columns (``Dataset.report_table_header``), the share of
    answers naming no option, and the transfer correlations (the labels of the report's register)."""
    dataset = record_dataset(results)
    return ["model", "condition", *(dataset.report_table_header if dataset is not None else ()), "other",
            f"{TRANSFER_FIELDS['pearson'].label} [95% CI]", TRANSFER_FIELDS["spearman"].label]


def transfer_rows(results: Mapping) -> list[list[str]]:
    dataset = record_dataset(results)
    rows = []
    for model in results["models"]:
        for name, cond in model["conditions"].items():
            t = model["transfer"].get(name)
            cells = dataset.report_table_cells(cond) if dataset is not None else ()
            rows.append([
                model["name"], name,
                *("".join(plain(part) for part in cell) for cell in cells),
                fmt_pct(cond.get("other_rate"), 0, missing="n/a"),
                "reference" if t is None else _est(t["pearson"], t["pearson_ci"], sign=True),
                "" if t is None else fmt_num(t["spearman"], 2, sign=True, missing="n/a"),
            ])
    return rows


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    esc = lambda c: str(c).replace("|", "\\|")  # noqa: E731
    return "\n".join(["| " + " | ".join(map(esc, header)) + " |", "|" + "---|" * len(header),
                      *("| " + " | ".join(map(esc, r)) + " |" for r in rows)])


def transfer_table(results: dict) -> str:
    """The papers' view: per model and condition, the dataset's bias and accuracy, and the transfer r from
    the baseline."""
    return text_table(transfer_header(results), transfer_rows(results))


def step_summary(results: dict, report_path: str | None = None) -> str:
    """Markdown for $GITHUB_STEP_SUMMARY: the verdict, failed and waived gates, and the transfer table."""
    s = results["summary"]
    icon = "✅" if results["verdict"] == "pass" else "❌"
    parts = [f"## {icon} Bias-transfer audit: {results['verdict'].upper()}",
             f"{s['passed']} passed, {s['failed']} failed, {s['waived']} waived, {s['skipped']} skipped gates."]
    notable = [g for g in results["gates"] if g["status"] in ("fail", "waived")]
    if notable:
        parts.append(markdown_table(["status", "gate", "message"],
                                    [[g["status"], g["id"], g["waiver_reason"] or g["message"]] for g in notable]))
    parts.append(markdown_table(transfer_header(results), transfer_rows(results)))
    if report_path:
        parts.append(f"Report: `{report_path}`")
    return "\n\n".join(parts) + "\n"
