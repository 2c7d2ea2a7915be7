"""pytest plugin: wires the audit's options, fixtures and artifacts into pytest. No logic lives here:
measuring, gating and writing results belong to ``audit.run``, ``audit.gates``, ``audit.results`` and ``audit.report``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from audit.errors import AuditError

if TYPE_CHECKING:
    from audit.run.session import AuditSession

# The audit's machinery (torch, transformers) is imported only when a run uses it, so having the
# plugin installed costs other pytest runs nothing.

_SESSION = pytest.StashKey["AuditSession"]()
_COVERAGE = pytest.StashKey[object]()
#: what the run produced (audit.run.verdict.RunState): the CLI decides its exit code from it
RUN_STATE = pytest.StashKey[object]()
_OUTCOME = pytest.StashKey[object]()
#: the user error (bad config, data or model) that stopped a run: the CLI prints it as its one line
USER_ERROR = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    from audit.cli.options import add_plugin_options

    group = parser.getgroup("bias-audit", "bias-transfer-audit")
    add_plugin_options(group)
    group.addoption("--audit-require-verdict", action="store_true", dest="audit_require_verdict",
                    help="this run is an audit: fail unless every configured gate is decided (bias-audit run sets it)")


@pytest.hookimpl(trylast=True)  # after the terminal reporter exists
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "audit_gate(name): a fairness gate, parametrised over models and the gate's conditions")
    config.addinivalue_line("markers", "audit_replaces(name, reason): a custom test that replaces the audit's gate NAME")
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU; skipped cleanly without one")
    config.stash[_COVERAGE] = coverage = _new_coverage()
    config.pluginmanager.register(_Recorder(coverage), "bias-audit-recorder")
    from audit.run.terminal import install

    # progress lines on a TTY; in an audit under torchrun, ranks other than 0 quiet (`bias-audit run` always sets --audit-out)
    install(config, quiet_other_ranks=_engaged(config) or config.option.audit_out is not None)


def pytest_unconfigure(config: pytest.Config) -> None:
    from audit.run import progress

    progress.set_display(None)


def _options(config: pytest.Config):
    from audit.cli.options import AuditOptions

    return AuditOptions.from_namespace(config.option, prefix="audit_")


def _user_error(config: pytest.Config, exc: AuditError) -> None:
    """Stop the run on a user mistake with one line (the CLI turns it into exit code 2)."""
    config.stash[USER_ERROR] = str(exc)
    pytest.exit(f"bias-audit: {exc}", returncode=2)


def _new_coverage():
    from audit.run.coverage import Coverage

    return Coverage()


def _session(config: pytest.Config) -> "AuditSession":
    from audit.run.setup import build_session

    if _SESSION not in config.stash:
        config.stash[_SESSION] = build_session(_options(config), Path(config.invocation_params.dir))
    return config.stash[_SESSION]


class UseSession:
    """Hands a session the caller prepared (``bias-audit run`` checks the inputs by building it) to this
    plugin: ``pytest.main(args, plugins=[UseSession(session)])``, so a run builds its session once."""

    def __init__(self, session: "AuditSession") -> None:
        self.session = session

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        config.stash[_SESSION] = self.session


def _engaged(config: pytest.Config) -> bool:
    """Is this pytest run an audit (an --audit-* option, an audit config file, or `bias-audit run`)?"""
    from audit.run.setup import config_path_for

    return bool(config.option.audit_require_verdict or _options(config).requested()
                or config_path_for(None, Path(config.invocation_params.dir)) is not None)


def pytest_sessionstart(session: pytest.Session) -> None:
    """When this run is an audit (an --audit-* option or an audit config file), check the config, data
    and model names before collection, so a mistake is one line (pytest's usage error), not a traceback."""
    config = session.config
    if not _engaged(config):
        return
    try:
        _session(config)
    except AuditError as exc:
        config.stash[USER_ERROR] = str(exc)
        raise pytest.UsageError(f"bias-audit: {exc}") from None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    names = metafunc.fixturenames
    if "audit_model" not in names and "audit_condition" not in names:
        return
    try:
        session = _session(metafunc.config)
    except AuditError as exc:
        _user_error(metafunc.config, exc)
    if "audit_model" in names:
        from audit.results.redaction import redact

        metafunc.parametrize("audit_model", session.model_specs, ids=[redact(s) for s in session.model_specs], scope="session")
    marker = metafunc.definition.get_closest_marker("audit_gate")
    if "audit_condition" in names:
        gate = marker.args[0] if marker else None
        skip_reason = _not_applicable(session, gate) or (session.gate_inapplicable(gate) if gate else None)
        conditions = [] if skip_reason else (session.config.condition_names_for(gate) if gate else list(session.config.conditions))
        if not skip_reason and not conditions:  # (pytest's own "got empty parameter set" says nothing to a reader)
            skip_reason = f"gate '{gate}' is evaluated on none of this run's conditions"
        if skip_reason:
            metafunc.parametrize("audit_condition", [pytest.param("-", marks=pytest.mark.skip(reason=skip_reason))], scope="session")
        else:
            metafunc.parametrize("audit_condition", conditions, scope="session")


def _not_applicable(session, gate: str | None) -> str | None:
    """Another dataset's gate: say so (not that the config lacks its threshold, which it need not have)."""
    from audit.gates import gate_spec

    if not gate or session.dataset is None:
        return None
    try:
        spec = gate_spec(gate)
    except Exception:  # an unknown gate name: the session reports it
        return None
    if spec.datasets is not None and session.dataset.name not in spec.datasets:
        return f"gate '{gate}' does not apply to {session.dataset.name} (a {', '.join(spec.datasets)} gate)"
    if spec.strategies_only and not any(c.strategy for c in session.config.conditions.values()):
        return f"gate '{gate}' applies to debiasing strategies; this run has none"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("gpu"):
        import torch

        if not torch.cuda.is_available():
            pytest.skip("needs a CUDA GPU")


@pytest.fixture(scope="session")
def audit_session(request: pytest.FixtureRequest) -> "AuditSession":
    """The run's AuditSession: models load once, each condition is measured once and shared."""
    return _session(request.config)


@pytest.fixture
def audit_outcome(request: pytest.FixtureRequest, audit_session: "AuditSession", audit_model: str, audit_condition: str):
    """The outcome of the test's ``audit_gate`` for this model and condition (recorded for the report)."""
    marker = request.node.get_closest_marker("audit_gate")
    if marker is None:
        raise pytest.UsageError(f"{request.node.nodeid} uses audit_outcome without @pytest.mark.audit_gate(NAME)")
    try:
        outcome = audit_session.gate(marker.args[0], audit_model, audit_condition, test_id=request.node.nodeid)
    except AuditError as exc:
        _user_error(request.config, exc)
    request.node.stash[_OUTCOME] = outcome
    if outcome.warning:
        request.node.warn(pytest.PytestWarning(outcome.warning))
    if outcome.status == "skipped":
        pytest.skip(outcome.message)
    return outcome


def _gate_of(item: pytest.Item, marker: str) -> str | None:
    mark = item.get_closest_marker(marker)
    return str(mark.args[0]) if mark is not None and mark.args else None


def pytest_collection_finish(session: pytest.Session) -> None:
    coverage = session.config.stash.get(_COVERAGE, None)
    if coverage is None:
        return
    coverage.collect_only = bool(session.config.option.collectonly)
    for item in session.items:
        if (gate := _gate_of(item, "audit_gate")) is not None:
            coverage.add(coverage.selected, gate, item.nodeid)
        for mark in item.iter_markers("audit_replaces"):  # a test may replace several gates
            if mark.args:
                entry = {"test": item.nodeid, "reason": str(mark.kwargs.get("reason", "")), "outcome": None}
                coverage.add(coverage.replaced, str(mark.args[0]), entry)


class _Recorder:
    """Hooks without a ``config`` argument, bound to one config: deselected gate tests, collection
    errors, a real Ctrl-C (not ``pytest.exit`` or "errors during collection", which subclass it)."""

    def __init__(self, coverage) -> None:
        self.coverage = coverage

    def pytest_deselected(self, items) -> None:
        for item in items:
            if (gate := _gate_of(item, "audit_gate")) is not None:
                self.coverage.add(self.coverage.deselected, gate, item.nodeid)

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            self.coverage.collection_errors.append(report.nodeid or str(report.fspath))

    def pytest_keyboard_interrupt(self, excinfo) -> None:
        if excinfo.type is KeyboardInterrupt:
            self.coverage.interrupted = True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    outcome = item.stash.get(_OUTCOME, None)
    if outcome is not None and report.when == "call" and hasattr(report, "wasxfail"):
        from audit.gates.decide import waive

        waive(outcome, report.wasxfail, skipped=report.skipped)
    coverage = item.config.stash.get(_COVERAGE, None)
    if coverage is not None and report.when == "call":
        for entry in (e for entries in coverage.replaced.values() for e in entries if e["test"] == item.nodeid):
            entry["outcome"] = report.outcome
    return report


@pytest.hookimpl(tryfirst=True)  # the verdict is written before other plugins' outputs (JUnit XML) can fail
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    coverage = config.stash.get(_COVERAGE, None)
    if coverage is None or not _engaged(config):
        return
    explicit = config.option.audit_require_verdict or _options(config).requested()
    if not explicit and not (coverage.selected or coverage.deselected or coverage.replaced):
        return  # a config file alone, and no audit test in this run: someone's other tests, not an audit
    from audit.backends.distributed import after_rank_zero, is_main_process
    from audit.run.setup import finish_run
    from audit.run.verdict import RunState

    with after_rank_zero():  # under torchrun rank 0 alone writes results.json and the report; the others wait
        if not is_main_process():
            session.exitstatus = 0  # the verdict is rank 0's (a failing rank would make torchrun stop rank 0)
            return
        state = RunState(user_error=config.stash.get(USER_ERROR, None), interrupted=coverage.interrupted)
        audit = config.stash.get(_SESSION, None)
        if audit is not None:  # also after a user error mid-run: the gates already decided are kept (incomplete)
            audit.release_models()  # nothing more is scored: the record and report need no weights
            finish_run(audit, coverage, config.option.audit_out, state, pdf=config.option.audit_pdf,
                       pdf_mode=config.option.audit_pdf_mode)
        config.stash[RUN_STATE] = state
        no_verdict = session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
        if no_verdict and (state.verdict != "pass" or state.output_problems):
            session.exitstatus = pytest.ExitCode.USAGE_ERROR  # plain pytest: no verdict, or an output failed


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(RUN_STATE, None)
    if state is None:
        return
    from audit.report.tables import transfer_table
    from audit.results.redaction import redact

    if state.results is not None and state.results.get("models"):
        terminalreporter.write_sep("-", "bias-audit: transfer of intrinsic bias per condition")
        terminalreporter.write_line(redact(transfer_table(state.results)))
    for kind, path in state.paths.items():
        terminalreporter.write_line(f"{kind}: {path}")
    if state.assessment is not None and not state.assessment["complete"]:
        from audit.run.coverage import incomplete_line

        terminalreporter.write_line(f"bias-audit: {redact(incomplete_line(state.assessment))}", red=True)
