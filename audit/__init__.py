"""bias-transfer-audit: does a causal LM's intrinsic gender bias transfer to its prompted behaviour?

Mackraz et al. 2024, "Evaluating Gender Bias Transfer between Pre-trained and Prompt-Adapted
Language Models"; Sivakumar, Mackraz et al. 2025, "Bias after Prompting" (EMNLP Findings).

The public API, re-exported from private modules:

- data: :func:`load_items` (generated | winobias | a directory), :func:`generate_items`, :class:`Item`,
  :func:`occupations`;
- models and scoring: :func:`load_model`, :class:`Scorer`, :class:`Request`;
- metrics (pure functions): :func:`occupational_selection_bias`, :func:`aggregate_selection_bias`,
  :func:`referent_prediction_accuracy`, :func:`transfer_correlation`;
- a run: :func:`load_config`, :class:`AuditSession`, :func:`build_session`;
- the record and its view: :func:`load_results`, :func:`render_report`, :func:`write_report`.
"""

import importlib
from typing import TYPE_CHECKING, Any

# name -> private module: imported on first use, so `import audit` (and the pytest plugin) stay light.
_EXPORTS = {
    "AuditConfig": "config", "ConditionConfig": "config", "load_config": "config",
    "load_items": "datasets.winobias.sources",
    "AuditError": "errors", "ConfigError": "errors", "DataError": "errors", "ModelLoadError": "errors",
    "generate_items": "datasets.winobias.generated",
    "Item": "datasets.winobias.items",
    "aggregate_selection_bias": "stats.metrics", "occupational_selection_bias": "stats.metrics",
    "referent_prediction_accuracy": "stats.metrics", "transfer_correlation": "stats.metrics",
    "LoadedModel": "backends.hf.loading", "load_model": "backends.hf.loading",
    "Occupation": "datasets.winobias.occupations", "lookup_occupation": "datasets.winobias.occupations", "occupations": "datasets.winobias.occupations",
    "load_results": "report.render", "render_report": "report.render", "write_report": "report.render",
    "build_session": "run.setup",
    "Request": "backends.hf.scorer", "Scorer": "backends.hf.scorer",
    "AuditSession": "run.session",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"audit.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'audit' has no attribute {name!r}")


if TYPE_CHECKING:  # pragma: no cover
    from audit.config import AuditConfig, ConditionConfig, load_config  # noqa: F401
    from audit.datasets.winobias.sources import load_items  # noqa: F401
    from audit.errors import AuditError, ConfigError, DataError, ModelLoadError  # noqa: F401
    from audit.datasets.winobias.generated import generate_items  # noqa: F401
    from audit.datasets.winobias.items import Item  # noqa: F401
    from audit.stats.metrics import aggregate_selection_bias, occupational_selection_bias, referent_prediction_accuracy, transfer_correlation  # noqa: F401
    from audit.backends.hf.loading import LoadedModel, load_model  # noqa: F401
    from audit.datasets.winobias.occupations import Occupation, lookup_occupation, occupations  # noqa: F401
    from audit.report.render import load_results, render_report, write_report  # noqa: F401
    from audit.run.setup import build_session  # noqa: F401
    from audit.backends.hf.scorer import Request, Scorer  # noqa: F401
    from audit.run.session import AuditSession  # noqa: F401

__version__ = "0.1.0"

__all__ = sorted(_EXPORTS)
