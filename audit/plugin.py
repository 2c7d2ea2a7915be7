"""pytest plugin: wires the audit's options, fixtures and artifacts into pytest. No logic lives here:
measuring, gating and writing results belong to ``audit._session``, ``audit._gates`` and ``audit.report``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ._errors import AuditError

if TYPE_CHECKING:
    from ._session import AuditSession

# The audit's machinery (torch, transformers) is imported only when a run uses it, so having the
# plugin installed costs other pytest runs nothing.

# The last user error (bad config, data or model) that stopped a run: the CLI prints it as its one line.
LAST_USER_ERROR: str | None = None
_SESSION = pytest.StashKey["AuditSession"]()
_OUTCOME = pytest.StashKey[object]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bias-audit", "bias-transfer-audit")
    group.addoption("--audit-model", action="append", default=[], metavar="NAME_OR_PATH",
                    help="model to audit (repeatable: models side by side); default: the embedded reference model")
    group.addoption("--audit-config", metavar="FILE", help="audit config TOML (default: [tool.bias-audit] in pyproject.toml)")
    group.addoption("--audit-preset", metavar="NAME", help="built-in config preset the config extends (default, study)")
    group.addoption("--audit-data", metavar="SOURCE", help="generated | winobias | DIR (overrides the config's data)")
    group.addoption("--audit-out", metavar="DIR", default=None, help="where results.json and report.html are written (default: reports/)")
    group.addoption("--audit-baseline", metavar="RESULTS_JSON", help="approved earlier results.json to compare with")
    group.addoption("--audit-device", metavar="DEVICE", help="torch device (default: cuda when present, else cpu)")
    group.addoption("--audit-dtype", metavar="DTYPE", help="float32 | bfloat16 | float16")
    group.addoption("--audit-trust-remote-code", action="store_true", help="allow a model's own Python code to run")
    group.addoption("--audit-allow-pickle", action="store_true", help="allow pickle (.bin) weights")
    group.addoption("--audit-no-cache", action="store_true",
                    help="neither read nor write the result cache ($BIAS_AUDIT_CACHE_DIR/results.sqlite)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "audit_gate(name): a fairness gate, parametrised over models and the gate's conditions")
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU; skipped cleanly without one")


def _user_error(exc: AuditError) -> None:
    """Stop the run on a user mistake with one line (the CLI turns it into exit code 2)."""
    global LAST_USER_ERROR
    LAST_USER_ERROR = str(exc)
    pytest.exit(f"bias-audit: {exc}", returncode=2)


def _config_file(config: pytest.Config) -> Path | None:
    from ._runner import config_path_for

    return config_path_for(config.option.audit_config, Path(config.invocation_params.dir))


def _session(config: pytest.Config) -> "AuditSession":
    from ._runner import build_session

    if _SESSION not in config.stash:
        opts = config.option
        config.stash[_SESSION] = build_session(
            models=opts.audit_model, config_file=_config_file(config), preset=opts.audit_preset,
            data=opts.audit_data, device=opts.audit_device, dtype=opts.audit_dtype,
            trust_remote_code=opts.audit_trust_remote_code, allow_pickle=opts.audit_allow_pickle,
            baseline=opts.audit_baseline, use_cache=not opts.audit_no_cache,
        )
    return config.stash[_SESSION]


def pytest_sessionstart(session: pytest.Session) -> None:
    """When this run is an audit (an --audit-* option or an audit config file), check the config, data
    and model names before collection, so a mistake is one line (pytest's usage error), not a traceback."""
    config = session.config
    opts = config.option
    requested = any((opts.audit_model, opts.audit_config, opts.audit_preset, opts.audit_data, opts.audit_baseline))
    if not requested and _config_file(config) is None:
        return
    try:
        _session(config)
    except AuditError as exc:
        global LAST_USER_ERROR
        LAST_USER_ERROR = str(exc)
        raise pytest.UsageError(f"bias-audit: {exc}") from None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    names = metafunc.fixturenames
    if "audit_model" not in names and "audit_condition" not in names:
        return
    try:
        session = _session(metafunc.config)
    except AuditError as exc:
        _user_error(exc)
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
        _user_error(exc)
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
    from ._runner import write_artifacts

    try:
        session.config.stash[_ARTIFACTS] = write_artifacts(audit, session.config.option.audit_out)
    except AuditError as exc:
        global LAST_USER_ERROR
        LAST_USER_ERROR = str(exc)
        session.exitstatus = 2


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if _ARTIFACTS not in config.stash:
        return
    from .report.tables import transfer_table

    results, paths = config.stash[_ARTIFACTS]
    terminalreporter.write_sep("-", "bias-audit: transfer of intrinsic bias per condition")
    terminalreporter.write_line(transfer_table(results))
    for kind, path in paths.items():
        terminalreporter.write_line(f"{kind}: {path}")
