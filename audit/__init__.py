"""bias-transfer-audit: does a causal LM's intrinsic bias transfer to its prompted behaviour?

Mackraz et al. 2024, "Evaluating Gender Bias Transfer between Pre-trained and Prompt-Adapted
Language Models"; Sivakumar, Mackraz et al. 2025, "Bias after Prompting" (EMNLP Findings).

The pipeline, one subpackage per stage (docs/architecture.md):
``datasets`` -> ``prompts`` -> ``backends`` -> ``run`` (conditions, session) -> ``stats`` ->
``gates`` -> ``results`` (results.json) -> ``report``; ``cli`` and ``plugin`` drive it.

The public API, re-exported lazily so that ``import audit`` (and the pytest plugin) stay light:
"""

import importlib
from typing import TYPE_CHECKING, Any

# name -> module: imported on first use.
_EXPORTS = {
    # configuration and a run
    "AuditConfig": "audit.config", "ConditionConfig": "audit.config", "load_config": "audit.config",
    "AuditOptions": "audit.cli.options", "build_session": "audit.run.setup", "AuditSession": "audit.run.session",
    # errors the user can fix
    "AuditError": "audit.errors", "ConfigError": "audit.errors", "DataError": "audit.errors", "ModelLoadError": "audit.errors",
    # datasets
    "Dataset": "audit.datasets", "register_dataset": "audit.datasets", "get_dataset": "audit.datasets",
    "load_items": "audit.datasets.winobias.sources", "generate_items": "audit.datasets.winobias.generated",
    "Item": "audit.datasets.winobias.items", "Occupation": "audit.datasets.winobias.occupations",
    "lookup_occupation": "audit.datasets.winobias.occupations", "occupations": "audit.datasets.winobias.occupations",
    # backends
    "Backend": "audit.backends", "BackendOptions": "audit.backends", "Request": "audit.backends",
    "register_backend": "audit.backends", "load_backend": "audit.backends",
    # metrics and statistics (pure functions)
    "aggregate_selection_bias": "audit.datasets.winobias.metrics", "occupational_selection_bias": "audit.datasets.winobias.metrics",
    "referent_prediction_accuracy": "audit.datasets.winobias.metrics", "transfer_correlation": "audit.stats.transfer",
    "bootstrap_interval": "audit.stats.bootstrap",
    # gates
    "GateSpec": "audit.gates", "Measurement": "audit.gates", "register_gate": "audit.gates",
    # the record and its view
    "load_results": "audit.results", "write_results": "audit.results",
    "render_report": "audit.report", "write_report": "audit.report",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'audit' has no attribute {name!r}")


if TYPE_CHECKING:  # pragma: no cover
    from audit.backends import Backend, BackendOptions, Request, load_backend, register_backend  # noqa: F401
    from audit.cli.options import AuditOptions  # noqa: F401
    from audit.config import AuditConfig, ConditionConfig, load_config  # noqa: F401
    from audit.datasets import Dataset, get_dataset, register_dataset  # noqa: F401
    from audit.datasets.winobias.generated import generate_items  # noqa: F401
    from audit.datasets.winobias.items import Item  # noqa: F401
    from audit.datasets.winobias.metrics import aggregate_selection_bias, occupational_selection_bias, referent_prediction_accuracy  # noqa: F401
    from audit.datasets.winobias.occupations import Occupation, lookup_occupation, occupations  # noqa: F401
    from audit.datasets.winobias.sources import load_items  # noqa: F401
    from audit.errors import AuditError, ConfigError, DataError, ModelLoadError  # noqa: F401
    from audit.gates import GateSpec, Measurement, register_gate  # noqa: F401
    from audit.report import render_report, write_report  # noqa: F401
    from audit.results import load_results, write_results  # noqa: F401
    from audit.run.session import AuditSession  # noqa: F401
    from audit.run.setup import build_session  # noqa: F401
    from audit.stats.bootstrap import bootstrap_interval  # noqa: F401
    from audit.stats.transfer import transfer_correlation  # noqa: F401

__version__ = "0.1.0"

__all__ = sorted(_EXPORTS)
