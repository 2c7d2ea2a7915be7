"""One meaning per exit code, decided in one place from what a run produced.

| code | meaning |
|---|---|
| 0 | the audit is complete and every gate passed (waived gates included); every output written |
| 1 | a gate failed (or a test of the suite failed an assertion), or a bias gate was inconclusive under `inconclusive = "fail"` (the default); the failure is in results.json |
| 2 | a usage, config or input error, or an incomplete audit (no gate decided, gates deselected or
      missing from the suite, too few items): one line naming the culprit |
| 3 | an internal error: a bug |
| 4 | the audit passed, but an output (results.json, report.html, JUnit XML, step summary) could not
      be written: an environment problem (disk full, folder gone), one line per output |
| 130 | interrupted (Ctrl-C / SIGINT): results so far are written and marked incomplete, the result
        cache keeps every committed score |

Precedence, when several apply: 130, then 2 for a user error that stopped the run, 3, 1, 2 for an
incomplete audit, 4, 0. An output that failed is always reported on its own line, whatever the code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

EXIT_PASS = 0
EXIT_GATE_FAILED = 1
EXIT_USER_ERROR = 2
EXIT_INTERNAL = 3
EXIT_OUTPUT = 4
EXIT_INTERRUPTED = 130


@dataclass
class RunState:
    """What a finished pytest run of the audit reports to the CLI (the plugin fills it)."""

    user_error: str | None = None
    internal_errors: int = 0
    test_failures: int = 0
    interrupted: bool = False
    verdict: str | None = None  # pass | fail | inconclusive | incomplete; None when no audit session was set up
    assessment: dict | None = None  # results.json's "coverage"
    output_problems: list[str] = field(default_factory=list)
    results_path: str | None = None
    results: dict | None = None  # the record as written (redacted), for the console's tables
    paths: dict = field(default_factory=dict)  # output kind -> path written


def decide(state: RunState) -> tuple[int, list[str]]:
    """The exit code and the lines to print on stderr (each one line, already prefixed)."""
    lines = [f"bias-audit: output error: {p}" for p in state.output_problems]
    if state.interrupted:
        where = f"partial results in {state.results_path} (marked incomplete)" if state.results_path else "no results written"
        return EXIT_INTERRUPTED, [f"bias-audit: interrupted: {where}; every score committed to the result cache is kept", *lines]
    if state.user_error:
        return EXIT_USER_ERROR, [f"bias-audit: error: {state.user_error}", *lines]
    if state.internal_errors:
        return EXIT_INTERNAL, [f"bias-audit: internal error: {state.internal_errors} test(s) or fixture(s) crashed "
                               "(a bug, please report it; the traceback is above)", *lines]
    if state.verdict == "fail" or state.test_failures:
        return EXIT_GATE_FAILED, lines
    if state.verdict == "inconclusive":  # a bias gate could not decide, and the config counts that against the audit
        return EXIT_GATE_FAILED, [*lines, "bias-audit: inconclusive: no gate failed, but at least one could not decide "
                                  "(config inconclusive = \"fail\"); see the gates' reasons"]
    if state.verdict != "pass":
        from audit.run.coverage import incomplete_line

        reason = incomplete_line(state.assessment) if state.assessment else "no audit session ran (no audit gate was collected)"
        return EXIT_USER_ERROR, [f"bias-audit: error: {reason}", *lines]
    if state.output_problems:
        return EXIT_OUTPUT, lines
    return EXIT_PASS, lines
