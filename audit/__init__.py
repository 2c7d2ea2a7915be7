"""bias-transfer-audit: does a causal LM's intrinsic bias transfer to its prompted behaviour?

Mackraz et al. 2024, "Evaluating Gender Bias Transfer between Pre-trained and Prompt-Adapted
Language Models"; Sivakumar, Mackraz et al. 2025, "Bias after Prompting" (EMNLP Findings).

The pipeline, one subpackage per stage (docs/architecture.md):
``datasets`` -> ``prompts`` -> ``backends`` -> ``run`` (conditions, session) -> ``stats`` ->
``gates`` -> ``results`` (results.json) -> ``report``; ``cli`` and ``plugin`` drive it.

The public API (``from audit import NAME``), re-exported lazily so that ``import audit`` (and the
pytest plugin) stay light. Users, plugins and tests import these names rather than deep modules:
configuration and a run (``load_config``, ``build_session``, ``AuditSession``), the errors, the three
extension seams with their registries (``Dataset``/``register_dataset``, ``Backend``/``register_backend``,
``GateSpec``/``register_gate`` with the gate contract ``GateContext``), prompts, generic statistics, the
record and the report. docs/architecture.md lists them.
"""

import importlib
from typing import TYPE_CHECKING, Any

# name -> module: imported on first use. Dataset-neutral: a dataset's own items and metrics are its
# package's (e.g. ``audit.datasets.winobias``), reached through ``get_dataset(NAME)`` or imported there.
_EXPORTS = {
    # configuration and a run
    "AuditConfig": "audit.config", "ConditionConfig": "audit.config", "GateConfig": "audit.config",
    "load_config": "audit.config", "AuditOptions": "audit.cli.options", "build_session": "audit.run.setup",
    "AuditSession": "audit.run.session",
    # errors the user can fix
    "AuditError": "audit.errors", "ConfigError": "audit.errors", "DataError": "audit.errors", "ModelLoadError": "audit.errors",
    # datasets
    "Dataset": "audit.datasets", "register_dataset": "audit.datasets", "get_dataset": "audit.datasets",
    "dataset_names": "audit.datasets", "resolve_data": "audit.datasets", "EstimatesChart": "audit.datasets.base",
    "ConditionKnob": "audit.datasets.base",
    # the other charts a dataset's report view declares (drawn by the report), beside EstimatesChart
    **{k: "audit.datasets.report_charts" for k in ("DotPlot", "Heatmap", "Scatter", "PointsPanel", "PointGroup",
                                                    "GroupedBars", "BarSeries")},
    # prompts
    "Prompt": "audit.prompts.render", "render_prompt": "audit.prompts.render", "prompt_formats": "audit.prompts.render",
    "set_prompt_dirs": "audit.prompts.render",
    # backends
    "Backend": "audit.backends", "BackendOptions": "audit.backends", "Request": "audit.backends",
    "register_backend": "audit.backends", "load_backend": "audit.backends", "backend_schemes": "audit.backends",
    # statistics (pure functions)
    "transfer_correlation": "audit.stats.transfer", "bootstrap_interval": "audit.stats.bootstrap",
    # gates
    "GateContext": "audit.gates", "GateSkipped": "audit.gates", "GateOutcome": "audit.gates", "GateSpec": "audit.gates",
    "Measurement": "audit.gates", "register_gate": "audit.gates", "all_gates": "audit.gates", "gate_spec": "audit.gates",
    "decide": "audit.gates.decide",
    # the record and its view
    "load_results": "audit.results", "write_results": "audit.results",
    "render_report": "audit.report", "write_report": "audit.report",
    "render_combined": "audit.report.combined", "write_combined": "audit.report.combined",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'audit' has no attribute {name!r}")


if TYPE_CHECKING:  # pragma: no cover
    from audit.backends import Backend, BackendOptions, Request, backend_schemes, load_backend, register_backend  # noqa: F401
    from audit.cli.options import AuditOptions  # noqa: F401
    from audit.config import AuditConfig, ConditionConfig, GateConfig, load_config  # noqa: F401
    from audit.datasets import Dataset, dataset_names, get_dataset, register_dataset, resolve_data  # noqa: F401
    from audit.datasets.base import ConditionKnob, EstimatesChart  # noqa: F401
    from audit.datasets.report_charts import (BarSeries, DotPlot, GroupedBars, Heatmap, PointGroup,  # noqa: F401
                                             PointsPanel, Scatter)
    from audit.errors import AuditError, ConfigError, DataError, ModelLoadError  # noqa: F401
    from audit.gates import (GateContext, GateOutcome, GateSkipped, GateSpec, Measurement, all_gates,  # noqa: F401
                             gate_spec, register_gate)
    from audit.gates.decide import decide  # noqa: F401
    from audit.prompts.render import Prompt, prompt_formats, render_prompt, set_prompt_dirs  # noqa: F401
    from audit.report import render_report, write_report  # noqa: F401
    from audit.report.combined import render_combined, write_combined  # noqa: F401
    from audit.results import load_results, write_results  # noqa: F401
    from audit.run.session import AuditSession  # noqa: F401
    from audit.run.setup import build_session  # noqa: F401
    from audit.stats.bootstrap import bootstrap_interval  # noqa: F401
    from audit.stats.transfer import transfer_correlation  # noqa: F401

__version__ = "0.1.0"

__all__ = sorted(_EXPORTS)
