"""``bias-audit``: run the audit suite, regenerate a report, check data.

Exit codes: 0 every gate passed; 1 a gate failed; 2 usage, config or input error (one line, no
traceback); 3 internal error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from ._errors import AuditError

EXIT_PASS, EXIT_GATE_FAILED, EXIT_USER_ERROR, EXIT_INTERNAL = 0, 1, 2, 3


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too by default)
        self.exit(EXIT_USER_ERROR, f"bias-audit: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _ArgumentParser(prog="bias-audit", description="Audit gender bias transfer in causal LMs (WinoBias).")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_ArgumentParser)

    run = sub.add_parser("run", help="run the audit suite (pytest) and write results.json and report.html")
    run.add_argument("--model", action="append", default=[], metavar="NAME_OR_PATH",
                     help="reference model name, model directory or hub id (repeatable); default: reference-fair")
    run.add_argument("--out", metavar="DIR", help="output directory (default: reports/)")
    run.add_argument("--config", metavar="FILE", help="config TOML (default: [tool.bias-audit] in ./pyproject.toml)")
    run.add_argument("--preset", metavar="NAME", help="built-in preset: default (intrinsic + zero-shot) or study (every condition)")
    run.add_argument("--data", metavar="SOURCE", help="generated | winobias | DIR with the official WinoBias files")
    run.add_argument("--baseline", metavar="RESULTS_JSON", help="fail when a metric got significantly worse than this run")
    run.add_argument("--device", help="torch device (default: cuda when present, else cpu)")
    run.add_argument("--dtype", help="float32 | bfloat16 | float16")
    run.add_argument("--trust-remote-code", action="store_true", help="allow the model's own Python code to run")
    run.add_argument("--allow-pickle", action="store_true", help="allow pickle (.bin) weights")
    run.add_argument("--tests", metavar="DIR", help="the fairness test suite (default: ./fairness_tests, else the built-in one)")
    run.add_argument("--junitxml", metavar="PATH", help="also write a JUnit XML report")
    run.add_argument("--pdf", metavar="PDF", help="also print the report to this PDF (needs Chromium)")
    run.add_argument("--no-cache", action="store_true", help="neither read nor write the result cache (see `bias-audit cache`)")
    run.add_argument("pytest_args", nargs=argparse.REMAINDER, help="after --: extra pytest arguments")

    report = sub.add_parser("report", help="regenerate report.html from a results.json, without the model")
    report.add_argument("results", metavar="RESULTS_JSON")
    report.add_argument("--out", metavar="HTML", help="where to write the report (default: report.html beside the results)")
    report.add_argument("--baseline", metavar="RESULTS_JSON", help="an approved earlier run to show side by side")
    report.add_argument("--pdf", metavar="PDF", help="also print the report to this PDF (needs Chromium)")

    init = sub.add_parser("init", help="write a starter fairness_tests/ and bias-audit.toml into this repository")
    init.add_argument("--force", action="store_true", help="overwrite existing files")

    data = sub.add_parser("data", help="inspect data sets").add_subparsers(dest="data_command", required=True, parser_class=_ArgumentParser)
    validate = data.add_parser("validate", help="check a directory of official WinoBias files; exit 2 if any line is bad")
    validate.add_argument("directory", metavar="DIR")
    validate.add_argument("--json", action="store_true", help="print the report as JSON")

    cache = sub.add_parser("cache", help="the result cache ($BIAS_AUDIT_CACHE_DIR/results.sqlite)").add_subparsers(
        dest="cache_command", required=True, parser_class=_ArgumentParser)
    info = cache.add_parser("info", help="where the cache is, its size, and its entries per model")
    info.add_argument("--json", action="store_true", help="print as JSON")
    clear = cache.add_parser("clear", help="delete the cache, or one model's entries")
    clear.add_argument("--model", metavar="NAME", help="only this model (its name or path as audited, or a model-key prefix)")
    return p


class _Tracker:
    """Counts test errors that are not gate failures (a crash in a test or fixture = internal error)."""

    def __init__(self) -> None:
        self.internal_errors = 0

    def pytest_runtest_logreport(self, report) -> None:
        if report.failed and (report.when != "call" or "AssertionError" not in str(report.longrepr)):
            self.internal_errors += 1


def _suite_dir(explicit: str | None) -> Path:
    from ._paths import resource_dir

    if explicit:
        path = Path(explicit)
        if not path.is_dir():
            raise AuditError(f"--tests '{explicit}': no such directory")
        return path
    local = Path("fairness_tests")
    return local if local.is_dir() else resource_dir("fairness_tests")


def _cmd_run(args: argparse.Namespace) -> int:
    import pytest

    from . import plugin
    from ._runner import build_session, check_out_dir, config_path_for

    # Check every user input before pytest starts, so a mistake is one line and exit 2.
    _check_pdf_engine(args.pdf)
    build_session(models=args.model, config_file=config_path_for(args.config, Path.cwd()), preset=args.preset,
                  data=args.data, baseline=args.baseline, use_cache=not args.no_cache)
    out = check_out_dir(args.out)
    suite = _suite_dir(args.tests)
    pytest_args = [str(suite), "-p", "no:cacheprovider", "--audit-out", str(out), "-q", "-rfEsx", "--tb=short",
                   "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    for model in args.model:
        pytest_args += ["--audit-model", model]
    for flag, value in (("--audit-config", args.config), ("--audit-preset", args.preset), ("--audit-data", args.data),
                        ("--audit-baseline", args.baseline), ("--audit-device", args.device),
                        ("--audit-dtype", args.dtype), ("--junitxml", args.junitxml)):
        if value:
            pytest_args += [flag, value]
    if args.trust_remote_code:
        pytest_args.append("--audit-trust-remote-code")
    if args.allow_pickle:
        pytest_args.append("--audit-allow-pickle")
    if args.no_cache:
        pytest_args.append("--audit-no-cache")
    extra = args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else args.pytest_args
    tracker = _Tracker()
    plugin.LAST_USER_ERROR = None
    code = int(pytest.main(pytest_args + extra, plugins=[tracker]))
    if plugin.LAST_USER_ERROR:
        print(f"bias-audit: error: {plugin.LAST_USER_ERROR}", file=sys.stderr)
        return EXIT_USER_ERROR
    if args.pdf and code in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) and (out / "report.html").is_file():
        from .report import write_pdf

        print(f"pdf: {write_pdf(out / 'report.html', args.pdf)}")
    if code == pytest.ExitCode.OK:
        return EXIT_PASS
    if code == pytest.ExitCode.TESTS_FAILED:
        return EXIT_INTERNAL if tracker.internal_errors else EXIT_GATE_FAILED
    if code in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.NO_TESTS_COLLECTED):
        return EXIT_USER_ERROR
    return EXIT_INTERNAL


def _cmd_data(args: argparse.Namespace) -> int:
    import json

    from ._winobias import validate_winobias_dir

    report = validate_winobias_dir(args.directory)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format_text())
    return EXIT_PASS if report.ok else EXIT_USER_ERROR


def _cmd_cache(args: argparse.Namespace) -> int:
    import json

    from ._cache import ResultCache, cache_files, default_cache_path, remove_cache_files

    path = default_cache_path()
    if args.cache_command == "clear":
        if args.model is None:
            removed = remove_cache_files(path)
            print(f"removed {path}" if removed else f"no cache at {path}")
        elif not path.exists():
            print(f"no cache at {path}")
        else:
            with ResultCache(path) as cache:
                print(f"removed {cache.clear(args.model)} entries of '{args.model}' from {path}")
        return EXIT_PASS
    size = sum(p.stat().st_size for p in cache_files(path))
    entries = []
    if path.exists():
        with ResultCache(path) as cache:
            entries = cache.entries()
    if args.json:
        print(json.dumps({"path": str(path), "bytes": size, "models": [e.__dict__ for e in entries]}, indent=2))
        return EXIT_PASS
    print(f"path: {path}" + ("" if path.exists() else " (not created yet)"))
    print(f"size: {size / 1e6:.1f} MB")
    print(f"entries: {sum(e.loglikelihood + e.generate for e in entries)}")
    for e in entries:
        print(f"  {e.model_key[:12]}  {e.loglikelihood:>8} scores  {e.generate:>6} generations  {e.model}")
    return EXIT_PASS


def _cmd_init(args: argparse.Namespace) -> int:
    from ._init import init_project

    for path in init_project(Path.cwd(), force=args.force):
        print(f"wrote {path}")
    print("next: edit the thresholds and rationales in bias-audit.toml, then run `bias-audit run --model YOUR_MODEL`")
    return EXIT_PASS


def _check_pdf_engine(pdf: str | None) -> None:
    if pdf:
        from .report.pdf import PdfEngineMissing, find_chromium

        if find_chromium() is None:
            raise PdfEngineMissing("--pdf needs Chromium to print the report: install it (Debian/Ubuntu: apt-get "
                                   "install chromium) or set BIAS_AUDIT_CHROMIUM to a Chromium or Chrome executable")


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import load_results, write_pdf, write_report

    _check_pdf_engine(args.pdf)
    results = load_results(args.results)
    approved = load_results(args.baseline) if args.baseline else None
    out = Path(args.out) if args.out else Path(args.results).with_name("report.html")
    try:
        path = write_report(results, out, approved=approved)
    except OSError as exc:
        raise AuditError(f"--out '{out}': cannot write the report ({exc.strerror})") from None
    print(f"report: {path}")
    if args.pdf:
        print(f"pdf: {write_pdf(path, args.pdf)}")
    return EXIT_PASS


COMMANDS = {"run": _cmd_run, "data": _cmd_data, "init": _cmd_init, "report": _cmd_report, "cache": _cmd_cache}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except AuditError as exc:
        print(f"bias-audit: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:  # output piped into e.g. `head`
        return EXIT_PASS
    except KeyboardInterrupt:
        print("bias-audit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
