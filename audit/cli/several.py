"""``bias-audit run --data A --data B ...``: several datasets in one run, one report, one verdict.

Each dataset is audited as a run of its own (its own preset unless ``--preset`` is given, its own
session and record in ``OUT/NAME/``), one after the other; every input is checked first, so a
mistake in the last dataset stops the run before the first model loads. Then ``OUT/report.html``
shows every record under the worst of their verdicts (:mod:`audit.report.combined`) and the exit
code is the most severe of the runs' (``audit.run.verdict``'s precedence).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import sys
from pathlib import Path
from typing import Callable

from audit.cli.options import AuditOptions
from audit.errors import AuditError
from audit.results.redaction import redact
from audit.run.verdict import EXIT_GATE_FAILED, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OUTPUT, EXIT_PASS, EXIT_USER_ERROR

# the run's exit code from its parts': the first of these that any part returned
SEVERITY = (EXIT_INTERRUPTED, EXIT_INTERNAL, EXIT_GATE_FAILED, EXIT_USER_ERROR, EXIT_OUTPUT, EXIT_PASS)


def combined_exit(codes: list[int]) -> int:
    return next((c for c in SEVERITY if c in codes), max(codes, default=EXIT_PASS))


def _part_args(args: argparse.Namespace, source: str, preset: str, out: Path) -> argparse.Namespace:
    part = copy.copy(args)
    part.data, part.preset, part.out = [source], preset, str(out)
    part.json, part.pdf, part.junitxml = False, None, None
    return part


def plan_parts(args: argparse.Namespace) -> list[tuple[str, argparse.Namespace]]:
    """(dataset name, that dataset's run arguments) for each ``--data``: ``OUT/NAME`` (``NAME-2`` for a second
    source of one dataset) and the dataset's own preset unless ``--preset`` names one for all."""
    from audit.datasets import resolve_data
    from audit.run.setup import check_out_dir

    options = AuditOptions.from_namespace(args)
    for flag, value in (("--junitxml", getattr(args, "junitxml", None)), ("--approved", options.approved)):
        if value:
            raise AuditError(f"{flag} applies to one dataset; with several --data run each dataset on its own for it")
    out = check_out_dir(options.out)
    parts, seen = [], {}
    for source in options.data_sources():
        dataset, _ = resolve_data(source)
        seen[dataset.name] = seen.get(dataset.name, 0) + 1
        folder = dataset.name if seen[dataset.name] == 1 else f"{dataset.name}-{seen[dataset.name]}"
        parts.append((dataset.name, _part_args(args, source, options.preset or dataset.default_preset, out / folder)))
    return parts


def run_several(args: argparse.Namespace, run_one: Callable[..., int]) -> int:
    """Check every dataset's inputs (building its session), run each, then write the combined report."""
    from audit.report.combined import combined_verdict, write_combined
    from audit.results.atomic import OutputError
    from audit.results.io import RESULTS_FILE, read_results
    from audit.run import progress
    from audit.run.setup import build_session, lock_out_dir

    parts = plan_parts(args)
    sessions = []
    for name, part in parts:
        progress.stage(f"checking {name}: config, data and models")
        sessions.append(build_session(AuditOptions.from_namespace(part)))
    out = Path(AuditOptions.from_namespace(args).out or "reports")
    lock_out_dir(out)
    codes, records, lines = [], [], []
    for (name, part), session in zip(parts, sessions):
        progress.stage(f"auditing {name} ({part.out})")
        with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
            codes.append(run_one(part, session))
        path = Path(part.out) / RESULTS_FILE
        if path.is_file():
            records.append(read_results(str(path), what=name))
        else:
            lines.append(f"bias-audit: {name}: no results written ({path})")
    report = None
    if records:
        try:
            report = write_combined(records, out / "report.html")
        except OutputError as exc:
            lines.append(f"bias-audit: output error: {exc}")
            codes.append(EXIT_OUTPUT)
        if report and args.pdf:
            from audit.report import write_pdf

            write_pdf(report, args.pdf)
    verdict = combined_verdict(records) if len(records) == len(parts) else "incomplete"
    code = combined_exit(codes)
    for line in lines:
        print(redact(line), file=sys.stderr)
    print(f"bias-audit: {len(parts)} datasets, verdict {verdict}: " + ", ".join(
        f"{name} {r.get('verdict')}" for (name, _), r in zip(parts, records)) + (f"; report {report}" if report else ""),
        file=sys.stderr)
    if args.json:
        print(json.dumps({"verdict": verdict, "exit_code": code, "report": str(report) if report else None,
                          "datasets": [{"dataset": r.get("dataset"), "verdict": r.get("verdict"), "results": p.out + "/" + RESULTS_FILE}
                                       for (_, p), r in zip(parts, records)],
                          "problems": [redact(x) for x in lines]}, indent=2))
    return code
