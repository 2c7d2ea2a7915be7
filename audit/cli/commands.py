"""``bias-audit``: run the audit suite, regenerate a report, check data.

Exit codes (one meaning each; decided in ``audit.run.verdict``): 0 the audit is complete and every
gate passed; 1 a gate failed; 2 usage, config or input error, or an incomplete audit (one line, no
traceback); 3 internal error; 4 an output could not be written; 130 interrupted.
"""

from __future__ import annotations

import argparse
import errno
import sys
from pathlib import Path
from typing import Sequence

from audit.backends import backend_schemes
from audit.cli.options import AuditOptions, add_cli_options
from audit.errors import AuditError
from audit.results.redaction import redact
from audit.run.collector import keep_frozen_at_exit, long_lived_frozen
from audit.run.verdict import EXIT_GATE_FAILED, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OUTPUT, EXIT_PASS, EXIT_USER_ERROR

__all__ = ["EXIT_GATE_FAILED", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_OUTPUT", "EXIT_PASS", "EXIT_USER_ERROR", "main"]


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too by default)
        self.exit(EXIT_USER_ERROR, f"bias-audit: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _ArgumentParser(prog="bias-audit", description="Audit bias transfer from pre-trained to prompted causal LMs (WinoBias, BBQ).")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_ArgumentParser)

    run = sub.add_parser("run", help="run the audit suite (pytest) and write results.json and report.html",
                         epilog="model backends: " + "; ".join(f"{s}: {d}" for s, d in backend_schemes().items())
                         + ". Data parallel on several GPUs: torchrun --nproc-per-node N -m audit.cli run ...; a model "
                         "larger than one GPU: --device-map auto; see docs/scaling.md.")
    add_cli_options(run)
    run.add_argument("--tests", metavar="DIR", help="the fairness test suite (default: ./fairness_tests, else the built-in one)")
    run.add_argument("--junitxml", metavar="PATH", help="also write a JUnit XML report")
    run.add_argument("--json", action="store_true", help="print the verdict, the exit code and every gate outcome as JSON "
                     "on stdout (pytest's output goes to stderr)")
    run.add_argument("pytest_args", nargs=argparse.REMAINDER, help="after --: extra pytest arguments")

    plan = sub.add_parser("plan", help="before a run: its conditions, requests, prompt tokens, what the result cache holds, "
                          "and a time estimate; loads no weights", epilog=run.epilog)
    add_cli_options(plan)
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")

    report = sub.add_parser("report", help="regenerate report.html from a results.json, without the model")
    report.add_argument("results", metavar="RESULTS_JSON", nargs="+",
                        help="one results.json; several (one per dataset): one combined report under one verdict")
    report.add_argument("--out", metavar="HTML", help="where to write the report (default: report.html beside the results)")
    report.add_argument("--approved", "--baseline", dest="approved", metavar="RESULTS_JSON",
                        help="an approved earlier run to show side by side (--baseline: its old name)")
    report.add_argument("--pdf", metavar="PDF", help="also print the report to this PDF (needs Chromium)")
    report.add_argument("--pdf-mode", metavar="MODE", help="what --pdf prints: executive (verdict, summary and gate "
                        "outcomes, at most 2 pages; the default) or full (the whole report)")
    report.add_argument("--approved-as", metavar="NAME", action="append", default=[],
                        help="compare with the approved run's model under another name: NAME (the approved run's only "
                        "model is this run's NAME) or APPROVED_NAME=NAME (repeatable)")

    from audit.cli.calibrate import add_calibrate_options

    calibrate = sub.add_parser("calibrate", help="how the gates of your config decide on your data: false-fail rate, power "
                               "and items needed for 80%% power, on simulated models of known truth (no model loaded)")
    add_calibrate_options(calibrate)

    from audit.cli.listing import LISTS

    listing = sub.add_parser("list", help="what exists: presets, datasets, gates, prompt formats, a preset's conditions")
    listing.add_argument("what", choices=LISTS)
    listing.add_argument("--preset", metavar="NAME", default="default", help="for conditions: the preset (default: default)")
    listing.add_argument("--json", action="store_true", help="print as JSON")

    from audit.cli.completion import SHELLS

    completion = sub.add_parser("completion", help="print a shell completion script: "
                                "eval \"$(bias-audit completion bash)\" (in ~/.bashrc)")
    completion.add_argument("shell", choices=SHELLS)

    init = sub.add_parser("init", help="write a starter fairness_tests/ and bias-audit.toml into this repository")
    init.add_argument("--force", action="store_true", help="overwrite existing files")

    data = sub.add_parser("data", help="inspect data sets").add_subparsers(dest="data_command", required=True, parser_class=_ArgumentParser)
    validate = data.add_parser("validate", help="check a directory of official data files (WinoBias, or NAME:DIR); exit 2 if any line is bad")
    validate.add_argument("directory", metavar="DIR")
    validate.add_argument("--json", action="store_true", help="print the report as JSON")

    cache = sub.add_parser("cache", help="the result cache ($BIAS_AUDIT_CACHE_DIR/results.sqlite)").add_subparsers(
        dest="cache_command", required=True, parser_class=_ArgumentParser)
    info = cache.add_parser("info", help="where the cache is, its size, and its entries per model")
    info.add_argument("--json", action="store_true", help="print as JSON")
    clear = cache.add_parser("clear", help="delete the cache, or one model's entries")
    clear.add_argument("--model", metavar="NAME", help="only this model: its name or path as audited, exactly, or a "
                       "model-key prefix of at least 6 hex digits")
    clear.add_argument("--glob", action="store_true", help="treat --model as a shell-style pattern (*, ?, [...]) over model names")
    return p


class _Tracker:
    """Counts test failures: a failed assertion in a test is a gate (or suite) failure, anything else
    (a crash in a test or fixture) an internal error. The run's state is the plugin's."""

    def __init__(self) -> None:
        self.internal_errors = 0
        self.test_failures = 0

    def pytest_runtest_logreport(self, report) -> None:
        if report.failed:
            if report.when == "call" and "AssertionError" in str(report.longrepr):
                self.test_failures += 1
            else:
                self.internal_errors += 1


def _suite_dir(explicit: str | None) -> Path:
    from audit.paths import resource_dir

    if explicit:
        path = Path(explicit)
        if not path.is_dir():
            raise AuditError(f"--tests '{explicit}': no such directory")
    else:
        local = Path("fairness_tests")
        path = local if local.is_dir() else resource_dir("fairness_tests")
    _check_suite(path)
    return path


def _check_suite(suite: Path) -> None:
    """A suite file that does not compile is a user error naming file and line (pytest would call it
    an interruption)."""
    for path in sorted(suite.rglob("*.py")):
        try:
            compile(path.read_bytes(), str(path), "exec")
        except SyntaxError as exc:
            raise AuditError(f"{path}:{exc.lineno}: syntax error in the fairness suite ({exc.msg})") from None
        except (OSError, ValueError) as exc:
            raise AuditError(f"{path}: cannot read the fairness suite file ({exc})") from None


def _check_junitxml(path: str | None) -> None:
    from audit.results.atomic import check_writable_file

    if path and (problem := check_writable_file(path, "--junitxml")):
        raise AuditError(problem)


def _write_junit(produced: Path, target: str, state) -> None:
    """pytest wrote the JUnit XML into a private folder; publish it redacted and atomically."""
    from audit.results.atomic import OutputError, write_atomic

    from audit.run.setup import RUN_ID

    try:
        text = produced.read_text(encoding="utf-8")
        text = text.replace("<testsuite ", f'<testsuite bias_audit_run_id="{RUN_ID}" ', 1)  # ties it to results.json
        write_atomic(target, text, what="--junitxml")
    except OSError as exc:  # pytest could not write it
        state.output_problems.append(f"--junitxml '{target}' could not be written ({exc.strerror or exc})")
    except OutputError as exc:
        state.output_problems.append(str(exc))


def _stage_to_stderr(text: str) -> None:
    print(f"bias-audit: {text}", file=sys.stderr, flush=True)


_held_stages: list[str] = []


def _release_stages(stream) -> None:
    """In logs: the stage lines of the checks, once they passed, where pytest's lines go (``stream``), as
    its progress display writes them; a user error before stays one line on stderr."""
    from audit.run import progress

    for text in _held_stages:
        print(f"  {text}", file=stream, flush=True)
    _held_stages.clear()
    progress.set_stage_sink(_stage_to_stderr if sys.stderr.isatty() else None)


def _cmd_run(args: argparse.Namespace) -> int:
    from audit.run import progress

    # On a terminal, the first line at once: the stages before pytest starts (config, data) print to
    # stderr. In logs they are held until the checks passed, so a user error there is one line.
    _held_stages.clear()
    progress.set_stage_sink(_stage_to_stderr if sys.stderr.isatty() else _held_stages.append)
    progress.stage("checking the config, data and models")
    try:
        return _run(args)
    finally:
        progress.set_stage_sink(None)


def _run(args: argparse.Namespace, session=None) -> int:
    """One audit through the pytest suite; ``session``: the one built from ``args`` already (else built here)."""
    import tempfile

    import pytest

    from audit.plugin import RUN_STATE, USER_ERROR, UseSession
    from audit.run.setup import build_session, check_out_dir, unused_plugin_args
    from audit.run.verdict import RunState, decide

    options = AuditOptions.from_namespace(args)
    if len(options.data_sources()) > 1:
        from audit.cli.several import run_several

        return run_several(args, _run)
    # Check every user input before pytest starts, so a mistake is one line and exit 2. The session built
    # here is the run's: the plugin is handed it (UseSession), not asked to build another.
    _check_pdf_engine(options.pdf, options.pdf_mode)
    session = session or build_session(options)
    _release_stages(sys.stderr if args.json else sys.stdout)
    options.out = str(check_out_dir(options.out))
    from audit.backends.distributed import is_main_process

    if is_main_process():  # rank 0 writes the outputs (torchrun): it alone holds the folder
        from audit.run.setup import lock_out_dir

        lock_out_dir(options.out)
    suite = _suite_dir(args.tests)
    _check_junitxml(args.junitxml)
    pytest_args = [str(suite), "-p", "no:cacheprovider", *unused_plugin_args(suite), "-q", "-rfEsx", "--tb=short",
                   "--audit-require-verdict", "-W", "ignore::pytest.PytestAssertRewriteWarning", *options.pytest_args()]
    extra = args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else args.pytest_args
    tracker = _Tracker()
    with tempfile.TemporaryDirectory(prefix="bias-audit-junit-") as private:
        junit = Path(private) / "junit.xml"
        if args.junitxml:
            pytest_args += ["--junitxml", str(junit)]
        config_holder: list = []

        class _Keep:  # keeps the config so the plugin's state can be read after pytest returns
            def pytest_unconfigure(self, config) -> None:
                config_holder.append(config)

        import contextlib

        # --json: stdout carries the JSON alone; pytest's terminal (and the progress) goes to stderr
        to_stderr = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
        with to_stderr, long_lived_frozen():  # the session built: imports and data live to the end
            code = int(pytest.main(pytest_args + extra, plugins=[tracker, _Keep(), UseSession(session)]))
        from audit.backends.distributed import is_main_process

        if not is_main_process():  # torchrun: the exit status and the record are rank 0's
            return EXIT_PASS
        config = config_holder[0] if config_holder else None
        state = config.stash.get(RUN_STATE, None) if config is not None else None
        if state is None:
            state = RunState(user_error=config.stash.get(USER_ERROR, None) if config is not None else None)
        if code == pytest.ExitCode.USAGE_ERROR and not state.user_error and state.verdict is None:
            state.user_error = "pytest could not run the suite (see its message above)"
        if code == pytest.ExitCode.INTERNAL_ERROR:
            state.internal_errors += 1
        if args.junitxml:
            _write_junit(junit, args.junitxml, state)
    state.internal_errors += tracker.internal_errors
    state.test_failures += tracker.test_failures
    exit_code, lines = decide(state)
    for line in lines:
        print(redact(line), file=sys.stderr)
    if args.json:
        print(_run_json(state, exit_code, lines))
    return exit_code


def _run_json(state, exit_code: int, lines: list[str]) -> str:
    """The machine-readable verdict: what results.json says (null fields when it could not be written)."""
    import json

    results = state.results or {}
    keys = ("id", "model", "condition", "metric", "status", "estimate", "ci", "bound", "bound_value", "threshold",
            "direction", "message")
    return json.dumps({
        "verdict": state.verdict, "exit_code": exit_code, "complete": results.get("complete"),
        "results": state.paths.get("results"), "report": state.paths.get("report"),
        "gates": [{k: g.get(k) for k in keys} for g in results.get("gates", [])],
        "problems": [redact(line) for line in lines],
    }, indent=2)


def _cmd_plan(args: argparse.Namespace) -> int:
    import json

    import time

    from audit.run.plan import format_plan, plan_json, plan_session, process_age
    from audit.run.setup import build_session

    from audit.run.plan_timing import Seconds, measure_pytest_start

    start = time.perf_counter()
    session = build_session(AuditOptions.from_namespace(args))
    # what the run pays before its first model loads, as this process paid it
    startup = Seconds(process_age() or time.perf_counter() - start, time.process_time(), time.thread_time())
    pytest_start = measure_pytest_start(_suite_dir(None))  # the run then starts pytest and collects its suite
    startup = Seconds(startup.wall + pytest_start.wall, startup.cpu + pytest_start.cpu, startup.main + pytest_start.free_wall)
    with long_lived_frozen():  # as the run does (audit.run.collector)
        plans = plan_session(session)
    print(json.dumps(plan_json(session, plans, startup), indent=2) if args.json else format_plan(session, plans, startup))
    return EXIT_PASS


def _cmd_list(args: argparse.Namespace) -> int:
    import json

    from audit.cli.listing import format_listing, listing

    rows = listing(args.what, preset=args.preset)
    print(json.dumps(rows, indent=2) if args.json else format_listing(args.what, rows))
    return EXIT_PASS


def _cmd_completion(args: argparse.Namespace) -> int:
    from audit.cli.completion import completion_script

    print(completion_script(_parser(), args.shell), end="")
    return EXIT_PASS


def _cmd_data(args: argparse.Namespace) -> int:
    import json

    from audit.datasets import resolve_data

    dataset, source = resolve_data(args.directory)
    report = dataset.validate(source)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format_text())
    return EXIT_PASS if report.ok else EXIT_USER_ERROR


def _cmd_cache(args: argparse.Namespace) -> int:
    from audit.cli.cache import cmd_cache

    return cmd_cache(args)


def _cmd_init(args: argparse.Namespace) -> int:
    from audit.cli.starter import init_project

    for path in init_project(Path.cwd(), force=args.force):
        print(f"wrote {path}")
    print("next: edit the thresholds and rationales in bias-audit.toml, then run `bias-audit run --model YOUR_MODEL`")
    return EXIT_PASS


def _check_pdf_engine(pdf: str | None, mode: str | None = None) -> None:
    from audit.report.render import MODES

    if mode is not None and mode not in MODES:
        raise AuditError(f"--pdf-mode '{mode}': expected one of {', '.join(MODES)}")
    if mode is not None and not pdf:
        raise AuditError("--pdf-mode needs --pdf PDF (the file to print to)")
    if pdf:
        from audit.report.pdf import PdfEngineMissing, find_chromium

        if find_chromium() is None:
            raise PdfEngineMissing("--pdf needs Chromium to print the report: install it (Debian/Ubuntu: apt-get "
                                   "install chromium) or set BIAS_AUDIT_CHROMIUM to a Chromium or Chrome executable")


def _cmd_report(args: argparse.Namespace) -> int:
    from audit.report import load_results, write_report, write_report_pdf
    from audit.report.compare import rename_approved
    from audit.results import read_results
    from audit.results.atomic import OutputError

    _check_pdf_engine(args.pdf, args.pdf_mode)
    if len(args.results) > 1:
        from audit.cli.several import report_several

        return report_several(args)
    args.results = args.results[0]
    if args.approved_as and not args.approved:
        raise AuditError("--approved-as needs --approved RESULTS_JSON (the run to compare with)")
    results = load_results(args.results)
    approved = read_results(args.approved, what="--approved") if args.approved else None
    if approved is not None and args.approved_as:
        approved = rename_approved(approved, results, args.approved_as)
    out = Path(args.out) if args.out else Path(args.results).with_name("report.html")
    try:
        path = write_report(results, out, approved=approved)
    except OutputError as exc:
        print(redact(f"bias-audit: output error: {exc}"), file=sys.stderr)
        return EXIT_OUTPUT
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, ArithmeticError) as exc:  # schema-valid, contents not
        detail = f"missing key {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
        raise AuditError(f"{args.results}: not a complete bias-audit results file ({detail}); "
                         "write it with `bias-audit run`") from None
    print(f"report: {path}")
    if args.pdf:
        print(f"pdf: {write_report_pdf(results, args.pdf, mode=args.pdf_mode or 'executive', html_path=path, approved=approved)}")
    return EXIT_PASS


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from audit.cli.calibrate import cmd_calibrate

    return cmd_calibrate(args)


COMMANDS = {"run": _cmd_run, "calibrate": _cmd_calibrate, "plan": _cmd_plan, "data": _cmd_data, "init": _cmd_init, "report": _cmd_report, "cache": _cmd_cache,
            "list": _cmd_list, "completion": _cmd_completion}


MAX_ERROR_LINE = 500


def _one_line(text: str) -> str:
    """An error as one line of at most MAX_ERROR_LINE characters, whatever a file or server put in it."""
    line = " ".join(text.split())
    return line if len(line) <= MAX_ERROR_LINE else line[: MAX_ERROR_LINE - 3] + "..."


def main(argv: Sequence[str] | None = None) -> int:
    """The ``bias-audit`` command; without ``argv``, this process's command line (the process ends with it)."""
    if argv is None:
        keep_frozen_at_exit()
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except AuditError as exc:
        print(_one_line(redact(f"bias-audit: error: {exc}")), file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:  # output piped into e.g. `head`
        return EXIT_PASS
    except OSError as exc:
        if exc.errno not in (errno.ENAMETOOLONG, errno.ELOOP):
            raise
        name = str(exc.filename or "")
        shown = name if len(name) <= 80 else f"{name[:60]}…({len(name)} characters)"
        why = "file name too long" if exc.errno == errno.ENAMETOOLONG else "too many levels of symbolic links"
        print(redact(f"bias-audit: error: '{shown}': {why}"), file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception as exc:  # a bug: the traceback for the report, then one line saying so
        import traceback

        print(redact(traceback.format_exc()), file=sys.stderr)
        print(redact(f"bias-audit: internal error (a bug, please report it): {type(exc).__name__}: {exc}"), file=sys.stderr)
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        print("bias-audit: interrupted before the audit started; nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
