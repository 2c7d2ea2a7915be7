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
_OUTCOME = pytest.StashKey[object]()
#: the user error (bad config, data or model) that stopped a run: the CLI prints it as its one line
USER_ERROR = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    from audit.cli.options import add_plugin_options

    add_plugin_options(parser.getgroup("bias-audit", "bias-transfer-audit"))


@pytest.hookimpl(trylast=True)  # after the terminal reporter exists
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "audit_gate(name): a fairness gate, parametrised over models and the gate's conditions")
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU; skipped cleanly without one")
    from audit.run.terminal import install

    # progress lines on a TTY; in an audit under torchrun, ranks other than 0 quiet (`bias-audit run` always sets --audit-out)
    install(config, quiet_other_ranks=_is_audit(config) or config.option.audit_out is not None)


def pytest_unconfigure(config: pytest.Config) -> None:
    from audit.run import progress

    progress.set_display(None)


def _is_audit(config: pytest.Config) -> bool:
    """An --audit-* option or an audit config file: this pytest run is an audit."""
    from audit.run.setup import config_path_for

    return _options(config).requested() or config_path_for(None, Path(config.invocation_params.dir)) is not None


def _options(config: pytest.Config):
    from audit.cli.options import AuditOptions

    return AuditOptions.from_namespace(config.option, prefix="audit_")


def _user_error(config: pytest.Config, exc: AuditError) -> None:
    """Stop the run on a user mistake with one line (the CLI turns it into exit code 2)."""
    config.stash[USER_ERROR] = str(exc)
    pytest.exit(f"bias-audit: {exc}", returncode=2)


def _session(config: pytest.Config) -> "AuditSession":
    from audit.run.setup import build_session

    if _SESSION not in config.stash:
        config.stash[_SESSION] = build_session(_options(config), Path(config.invocation_params.dir))
    return config.stash[_SESSION]


def pytest_sessionstart(session: pytest.Session) -> None:
    """When this run is an audit (an --audit-* option or an audit config file), check the config, data
    and model names before collection, so a mistake is one line (pytest's usage error), not a traceback."""
    config = session.config
    if not _is_audit(config):
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
        metafunc.parametrize("audit_model", session.model_specs, scope="session")
    marker = metafunc.definition.get_closest_marker("audit_gate")
    if "audit_condition" in names:
        gate = marker.args[0] if marker else None
        skip_reason = session.gate_inapplicable(gate) if gate else None
        if skip_reason:
            metafunc.parametrize("audit_condition", [pytest.param("-", marks=pytest.mark.skip(reason=skip_reason))], scope="session")
        else:
            conditions = session.config.condition_names_for(gate) if gate else list(session.config.conditions)
            metafunc.parametrize("audit_condition", conditions, scope="session")


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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    outcome = item.stash.get(_OUTCOME, None)
    if outcome is not None and report.when == "call" and hasattr(report, "wasxfail"):
        outcome.status = "waived" if report.skipped else outcome.status  # type: ignore[attr-defined]
        outcome.waiver_reason = report.wasxfail or "expected failure"  # type: ignore[attr-defined]
    return report


_ARTIFACTS = pytest.StashKey[tuple]()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    audit = session.config.stash.get(_SESSION, None)
    if audit is None or not audit.outcomes:
        return
    from audit.backends.distributed import after_rank_zero, is_main_process
    from audit.run.setup import write_artifacts

    with after_rank_zero():  # under torchrun rank 0 alone writes results.json and the report; the others wait
        if not is_main_process():
            session.exitstatus = 0  # the verdict is rank 0's (a failing rank would make torchrun stop rank 0)
            return
        try:
            session.config.stash[_ARTIFACTS] = write_artifacts(audit, session.config.option.audit_out, session.config.option.audit_pdf)
        except AuditError as exc:
            session.config.stash[USER_ERROR] = str(exc)
            session.exitstatus = 2


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if _ARTIFACTS not in config.stash:
        return
    from audit.report.tables import transfer_table

    results, paths = config.stash[_ARTIFACTS]
    terminalreporter.write_sep("-", "bias-audit: transfer of intrinsic bias per condition")
    terminalreporter.write_line(transfer_table(results))
    for kind, path in paths.items():
        terminalreporter.write_line(f"{kind}: {path}")
