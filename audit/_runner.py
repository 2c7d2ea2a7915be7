"""Setting up a run from options (shared by the CLI and the pytest plugin) and writing its artifacts."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ._baseline import load_baseline
from ._config import load_config, read_toml
from ._errors import AuditError
from .report.tables import step_summary
from ._session import DEFAULT_MODEL, AuditSession, LoadOptions, write_results

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


def build_session(
    *,
    models: list[str] | None,
    config_file: Path | None,
    preset: str | None = None,
    data: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    baseline: str | None = None,
    use_cache: bool = True,
) -> AuditSession:
    overrides = {"data": data} if data else {}
    config = load_config(config_file, preset=preset or "default", overrides=overrides)
    session = AuditSession(
        config=config,
        model_specs=list(dict.fromkeys(models or [DEFAULT_MODEL])),
        load_options=LoadOptions(device=device, dtype=dtype, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle,
                                 use_cache=use_cache),
    )
    if baseline:
        session.baseline = load_baseline(baseline)
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


def write_artifacts(session: AuditSession, out: str | Path | None) -> tuple[dict, dict[str, Path]]:
    """results.json first (the record), then the views of it: report.html, and the GitHub step summary."""
    from .report import write_report

    out_dir = check_out_dir(out)
    paths = {"results": write_results(session.results(), out_dir)}
    results = json.loads(paths["results"].read_text(encoding="utf-8"))  # the views render the record as written
    paths["report"] = write_report(results, out_dir / "report.html", approved=getattr(session, "baseline", None))
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        with open(summary_file, "a", encoding="utf-8") as fh:
            fh.write(step_summary(results, str(paths.get("report", paths["results"]))))
    return results, paths
