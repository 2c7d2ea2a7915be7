"""Plain-text and Markdown views of results.json: the papers' table of transfer per condition, and
the gate summary (for the terminal and for GitHub's step summary)."""

from __future__ import annotations

from .format import fmt_estimate, fmt_num, fmt_pct
from .quantities import FIELD_LABELS


def _est(value, ci, sign: bool = False) -> str:
    return fmt_estimate(value, ci, 2, sign=sign)


def transfer_rows(results: dict) -> list[list[str]]:
    rows = []
    for model in results["models"]:
        for name, cond in model["conditions"].items():
            t = model["transfer"].get(name)
            rpa = cond.get("rpa") or {}
            rows.append([
                model["name"], name,
                _est(cond.get("a_sb"), cond.get("a_sb_ci")),
                _est(cond.get("debiased_effect"), cond.get("debiased_effect_ci")),
                fmt_num(cond.get("noise_floor"), 2, missing="n/a"),
                f"{fmt_num(rpa.get('pro'), 2, missing='n/a')}/{fmt_num(rpa.get('anti'), 2, missing='n/a')}",
                fmt_pct(cond["other_rate"], 0, missing="n/a"),
                "reference" if t is None else _est(t["pearson"], t["pearson_ci"], sign=True),
                "" if t is None else fmt_num(t["spearman"], 2, sign=True, missing="n/a"),
            ])
    return rows


# the labels of the report's register (audit.report.quantities): one label per number, in every view
TRANSFER_HEADER = ["model", "condition", FIELD_LABELS["a_sb"], f"{FIELD_LABELS['debiased_effect']} [95% CI]", "noise floor",
                   "RPA pro/anti", "other", f"{FIELD_LABELS['pearson']} [95% CI]", FIELD_LABELS["spearman"]]


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    esc = lambda c: str(c).replace("|", "\\|")  # noqa: E731
    return "\n".join(["| " + " | ".join(map(esc, header)) + " |", "|" + "---|" * len(header),
                      *("| " + " | ".join(map(esc, r)) + " |" for r in rows)])


def transfer_table(results: dict) -> str:
    """The papers' view: per model and condition, A-SB, RPA, and the transfer rho from the baseline."""
    return text_table(TRANSFER_HEADER, transfer_rows(results))


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
    parts.append(markdown_table(TRANSFER_HEADER, transfer_rows(results)))
    if report_path:
        parts.append(f"Report: `{report_path}`")
    return "\n\n".join(parts) + "\n"
