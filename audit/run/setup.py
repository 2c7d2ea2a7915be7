"""Setting up a run from options (shared by the CLI and the pytest plugin) and writing its artifacts."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from audit.config import load_config, read_toml
from audit.errors import AuditError
from audit.backends.base import BackendOptions
from audit.results.io import read_results, write_results
from audit.results.redaction import public_spec
from audit.run.session import DEFAULT_MODEL, AuditSession

if TYPE_CHECKING:
    from audit.cli.options import AuditOptions  # the options table of the drivers; only its values are read here

DEFAULT_OUT = Path("reports")


CONFIG_FILE = "bias-audit.toml"


# Plugins pytest loads by itself (entry points) that an audit suite uses only if one of its files names their
# module. Loading one costs its imports and pytest's rewriting of its modules, which is not cached where Python
# writes no bytecode (PYTHONDONTWRITEBYTECODE, usual in CI images): 1.5-2 s of a 12-second bbq run.
_OPTIONAL_PLUGINS = {"hypothesispytest": "hypothesis", "anyio": "anyio"}


def unused_plugin_args(suite: Path) -> list[str]:
    """``-p no:NAME`` for each of ``_OPTIONAL_PLUGINS`` whose module no file of ``suite`` names."""
    text = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in sorted(Path(suite).rglob("*.py")))
    return [arg for name, module in _OPTIONAL_PLUGINS.items() if module not in text for arg in ("-p", f"no:{name}")]


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


def backend_options(options: "AuditOptions", batch_size: int | str = "auto") -> BackendOptions:
    extra = {}
    for pair in options.backend_option:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise AuditError(f"--backend-option '{pair}': expected KEY=VALUE")
        extra[key.strip()] = value
    return BackendOptions(device=options.device, dtype=options.dtype, device_map=options.device_map,
                          trust_remote_code=options.trust_remote_code, allow_pickle=options.allow_pickle,
                          batch_size=batch_size, extra=extra)


def _int_option(flag: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise AuditError(f"--{flag} '{value}': expected a whole number") from None


def config_overrides(options: "AuditOptions") -> dict:
    """The config keys set on the command line (the config validates their ranges, naming the key)."""
    sources = options.data_sources()
    if len(sources) > 1:
        raise AuditError(f"--data was given {len(sources)} times: a session audits one dataset; `bias-audit run` audits "
                         "several, one after the other, under one verdict")
    overrides: dict = {"data": sources[0]} if sources else {}
    if options.prompt_dir:
        overrides["prompt_dirs"] = list(options.prompt_dir)
    for flag in ("max-items", "seed", "n-resamples"):
        value = getattr(options, flag.replace("-", "_"))
        if value is not None:
            overrides[flag.replace("-", "_")] = _int_option(flag, value)
    if options.split is not None:
        if options.split not in ("dev", "test", "all"):
            raise AuditError(f"--split '{options.split}': expected dev, test or all")
        overrides["split"] = options.split
    return overrides


def with_categories(data: str, categories: str | None) -> str:
    """The data source with ``--categories`` applied (BBQ's ``bbq:DIR#Cat1,Cat2``)."""
    if not categories:
        return data
    names = [c.strip() for c in categories.split(",") if c.strip()]
    if not names:
        raise AuditError(f"--categories '{categories}': expected a comma-separated list of BBQ categories")
    if not data.startswith("bbq:"):
        raise AuditError(f"--categories applies to BBQ data (--data bbq:DIR), not to '{data}'")
    if "#" in data:
        raise AuditError(f"--categories: the data source '{data}' already chooses categories after '#'; use one or the other")
    return f"{data}#{','.join(names)}"


def model_names(options: "AuditOptions") -> tuple[list[str], dict[str, str]]:
    """The models as shown (``--name NAME=MODEL`` renames one) and the spec behind each renamed one."""
    specs = list(dict.fromkeys(public_spec(s) for s in options.model or [DEFAULT_MODEL]))
    aliases: dict[str, str] = {}
    for pair in options.name:
        name, sep, spec = (part.strip() for part in pair.partition("="))
        if not sep or not name or not spec:
            raise AuditError(f"--name '{pair}': expected NAME=MODEL")
        if spec not in specs:
            raise AuditError(f"--name '{pair}': '{spec}' is not a --model of this run")
        if name in specs or name in aliases:
            raise AuditError(f"--name '{pair}': the name '{name}' is already used")
        specs[specs.index(spec)] = name
        aliases[name] = spec
    return specs, aliases


def build_session(options: "AuditOptions", root: Path | None = None) -> AuditSession:
    """A prepared session from the run's options: config, data and model specs checked, nothing loaded."""
    overrides = config_overrides(options)
    config_file = config_path_for(options.config, root or Path.cwd())
    config = load_config(config_file, preset=options.preset, overrides=overrides)
    if options.categories:  # the config is read once; --categories only narrows its data source
        config = config.model_copy(update={"data": with_categories(config.data, options.categories)})
    specs, aliases = model_names(options)
    session = AuditSession(
        config=config,
        model_specs=specs,
        aliases=aliases,
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


RUN_ID = uuid.uuid4().hex[:16]  # this process's run: recorded in results.json, report.html, JUnit and the step summary
_held_locks: dict[str, int] = {}


def lock_out_dir(out: str | Path | None, *, required: bool = True) -> None:
    """Hold ``--out`` for this process until it exits: a second run into the same folder is refused in
    one line instead of interleaving its files with this run's. An advisory lock on the folder itself
    (flock on its descriptor: no lock file among the outputs; released by the kernel on exit, even kill -9)."""
    import fcntl

    path = Path(out) if out else DEFAULT_OUT
    key = str(path.resolve())
    if key in _held_locks:
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        if not required:  # writing the outputs will say what is wrong with the folder, naming each file
            return
        raise AuditError(f"--out '{path}': cannot open the directory ({exc.strerror or exc})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise AuditError(f"--out '{path}': another bias-audit run is writing there; wait for it to end or choose "
                         "another --out") from None
    _held_locks[key] = fd


def finish_run(session: AuditSession, coverage, out: str | Path | None, state, pdf: str | None = None,
               pdf_mode: str | None = None) -> None:
    """Decide the verdict (``audit.run.coverage``) and write it: results.json first (the record), then
    its views. Fills ``state`` (an ``audit.run.verdict.RunState``)."""
    from audit.run.coverage import assess, verdict

    state.assessment = assess(session, coverage)
    state.verdict = verdict(session, state.assessment)
    write_outputs(session.results(coverage=state.assessment, verdict=state.verdict), out, state,
                  approved=session.approved, pdf=pdf, pdf_mode=pdf_mode)


def _remove_stale(paths: list[Path]) -> None:
    """An earlier run's outputs must not pass for this run's when this run's could not be written."""
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass


def _with_run_id(results: dict) -> dict:
    """``results`` with this run's id right after its creation time."""
    out: dict = {}
    for key, value in results.items():
        if key != "run_id":
            out[key] = value
        if key == "created":
            out["run_id"] = RUN_ID
    out.setdefault("run_id", RUN_ID)
    return out


def write_outputs(results: dict, out: str | Path | None, state, *, approved: dict | None = None, pdf: str | None = None,
                  pdf_mode: str | None = None) -> None:
    """results.json, then report.html (beside the approved run, if any; and its PDF, if asked) and the
    GitHub step summary, each written atomically. A failed
    write is one line in ``state.output_problems`` (never a gate result, never a traceback); when
    results.json fails, an earlier run's results.json and report.html are removed."""
    from audit.report import write_report
    from audit.report.tables import step_summary
    from audit.results.atomic import OutputError, append_text
    from audit.results.io import RESULTS_FILE, results_text

    out_dir = Path(out) if out else DEFAULT_OUT
    lock_out_dir(out_dir, required=False)
    results = _with_run_id(results)
    text = results_text(results)
    state.results = json.loads(text)  # the views render the record as written
    # the previous run's views go first: a run killed between files leaves this run's record alone, never
    # this run's results.json beside an older report.html (each names its run id)
    _remove_stale([out_dir / "report.html"])
    try:
        path = write_results(results, out_dir)
    except OutputError as exc:
        state.output_problems.append(f"{exc}; the verdict ({state.verdict}) is not recorded")
        _remove_stale([out_dir / RESULTS_FILE, out_dir / "report.html"])
        return
    state.paths["results"] = state.results_path = str(path)
    try:
        state.paths["report"] = str(write_report(state.results, out_dir / "report.html", approved=approved))
    except OutputError as exc:
        state.output_problems.append(str(exc))
        _remove_stale([out_dir / "report.html"])
    if pdf and "report" in state.paths:
        from audit.report import write_report_pdf

        try:  # executive (two pages) unless --pdf-mode full
            state.paths["pdf"] = str(write_report_pdf(state.results, pdf, mode=pdf_mode or "executive",
                                                      html_path=state.paths["report"], approved=approved))
        except (OutputError, AuditError) as exc:
            state.output_problems.append(str(exc))
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        try:
            append_text(summary_file, step_summary(state.results, state.paths.get("report", state.results_path))
                        + f"\n<!-- bias-audit run id {RUN_ID} -->\n", what="GITHUB_STEP_SUMMARY")
        except OutputError as exc:
            state.output_problems.append(str(exc))
