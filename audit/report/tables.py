"""Plain-text and Markdown views of results.json: the papers' table of transfer per condition, and
the gate summary (for the terminal and for GitHub's step summary)."""

from __future__ import annotations


def _num(x, fmt: str = "{:+.2f}") -> str:
    return "n/a" if x is None else fmt.format(x)


def _ci(pair, fmt: str = "{:+.2f}") -> str:
    if not pair or pair[0] is None:
        return ""
    return f"[{fmt.format(pair[0])}, {fmt.format(pair[1])}]"


def transfer_rows(results: dict) -> list[list[str]]:
    rows = []
    for model in results["models"]:
        for name, cond in model["conditions"].items():
            t = model["transfer"].get(name)
            rows.append([
                model["name"], name,
                f"{_num(cond.get('a_sb'), '{:.2f}')} {_ci(cond.get('a_sb_ci'), '{:.2f}')}",  # WinoBias's columns: n/a elsewhere
                f"{_num((cond.get('rpa') or {}).get('pro'), '{:.2f}')}/{_num((cond.get('rpa') or {}).get('anti'), '{:.2f}')}",
                _num(cond["other_rate"], "{:.0%}"),
                "reference" if t is None else f"{_num(t['pearson'])} {_ci(t['pearson_ci'])}",
                "" if t is None else _num(t["spearman"]),
            ])
    return rows


TRANSFER_HEADER = ["model", "condition", "A-SB [95% CI]", "RPA pro/anti", "other", "Pearson rho [95% CI]", "Spearman"]


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
