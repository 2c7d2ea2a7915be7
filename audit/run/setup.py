"""Setting up a run from options (shared by the CLI and the pytest plugin) and writing its artifacts."""

from __future__ import annotations

import json
import os
from pathlib import Path

from audit.config import load_config, read_toml
from audit.errors import AuditError
from audit.backends.base import BackendOptions
from audit.cli.options import AuditOptions
from audit.results.io import read_results, write_results
from audit.run.session import DEFAULT_MODEL, AuditSession

DEFAULT_OUT = Path("reports")


CONFIG_FILE = "bias-audit.toml"


def config_path_for(explicit: str | None, root: Path) -> Path | None:
    """The config file: the one given, else ./bias-audit.toml, else the project's pyproject.toml when
    it has a [tool.bias-audit] table; None means the built-in preset alone."""
    if explicit:
        return Path(explicit)
    if (root / CONFIG_FILE).is_file():
        return root / CONFIG_FILE
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            if read_toml(pyproject, table="tool.bias-audit"):
                return pyproject
        except AuditError:
            return pyproject  # let load_config report the broken file
    return None


def backend_options(options: AuditOptions, batch_size: int | str = "auto") -> BackendOptions:
    extra = {}
    for pair in options.backend_option:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise AuditError(f"--backend-option '{pair}': expected KEY=VALUE")
        extra[key.strip()] = value
    return BackendOptions(device=options.device, dtype=options.dtype, device_map=options.device_map,
                          trust_remote_code=options.trust_remote_code, allow_pickle=options.allow_pickle,
                          batch_size=batch_size, extra=extra)


def build_session(options: AuditOptions, root: Path | None = None) -> AuditSession:
    """A prepared session from the run's options: config, data and model specs checked, nothing loaded."""
    overrides = {"data": options.data} if options.data else {}
    config_file = config_path_for(options.config, root or Path.cwd())
    config = load_config(config_file, preset=options.preset or "default", overrides=overrides)
    session = AuditSession(
        config=config,
        model_specs=list(dict.fromkeys(options.model or [DEFAULT_MODEL])),
        backend_options=backend_options(options, config.batch_size),
        use_cache=not options.no_cache,
    )
    if options.approved:
        session.approved = read_results(options.approved, what="--approved")
    session.prepare()
    return session


def check_out_dir(out: str | Path | None) -> Path:
    """The output directory, created; one clear error when it cannot be written."""
    path = Path(out) if out else DEFAULT_OUT
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AuditError(f"--out '{path}': cannot create the directory ({exc.strerror})") from None
    if not os.access(path, os.W_OK):
        raise AuditError(f"--out '{path}': directory is not writable")
    return path


def write_artifacts(session: AuditSession, out: str | Path | None, pdf: str | None = None) -> tuple[dict, dict[str, Path]]:
    """results.json first (the record), then the views of it: report.html (and its PDF), and the GitHub step summary."""
    from audit.report import write_report

    out_dir = check_out_dir(out)
    paths = {"results": write_results(session.results(), out_dir)}
    results = json.loads(paths["results"].read_text(encoding="utf-8"))  # the views render the record as written
    paths["report"] = write_report(results, out_dir / "report.html", approved=session.approved)
    if pdf:
        from audit.report import write_pdf

        paths["pdf"] = write_pdf(paths["report"], pdf)
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        with open(summary_file, "a", encoding="utf-8") as fh:
            from audit.report.tables import step_summary

            fh.write(step_summary(results, str(paths.get("report", paths["results"]))))
    return results, paths
