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
    "AuditConfig": "_config", "ConditionConfig": "_config", "load_config": "_config",
    "load_items": "_datasets",
    "AuditError": "_errors", "ConfigError": "_errors", "DataError": "_errors", "ModelLoadError": "_errors",
    "generate_items": "_generated",
    "Item": "_items",
    "aggregate_selection_bias": "_metrics", "occupational_selection_bias": "_metrics",
    "referent_prediction_accuracy": "_metrics", "transfer_correlation": "_metrics",
    "LoadedModel": "_models", "load_model": "_models",
    "Occupation": "_occupations", "lookup_occupation": "_occupations", "occupations": "_occupations",
    "load_results": "report", "render_report": "report", "write_report": "report",
    "build_session": "_runner",
    "Request": "_scoring", "Scorer": "_scoring",
    "AuditSession": "_session",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'audit' has no attribute {name!r}")


if TYPE_CHECKING:  # pragma: no cover
    from ._config import AuditConfig, ConditionConfig, load_config  # noqa: F401
    from ._datasets import load_items  # noqa: F401
    from ._errors import AuditError, ConfigError, DataError, ModelLoadError  # noqa: F401
    from ._generated import generate_items  # noqa: F401
    from ._items import Item  # noqa: F401
    from ._metrics import aggregate_selection_bias, occupational_selection_bias, referent_prediction_accuracy, transfer_correlation  # noqa: F401
    from ._models import LoadedModel, load_model  # noqa: F401
    from ._occupations import Occupation, lookup_occupation, occupations  # noqa: F401
    from .report import load_results, render_report, write_report  # noqa: F401
    from ._runner import build_session  # noqa: F401
    from ._scoring import Request, Scorer  # noqa: F401
    from ._session import AuditSession  # noqa: F401

__version__ = "0.1.0"

__all__ = sorted(_EXPORTS)
