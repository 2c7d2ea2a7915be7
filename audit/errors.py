"""Errors the user can fix. Each becomes one clear line and exit code 2 at the CLI."""

from __future__ import annotations


class AuditError(Exception):
    """A problem with the user's input (data, model, config, options): one line, exit code 2.

    The message must name the culprit: the file and line, the option, or the config key.
    """

    exit_code = 2


class DataError(AuditError):
    """A data file or directory cannot be read or parsed."""


class ModelLoadError(AuditError):
    """A model or tokenizer cannot be loaded from the given name or path."""


class ConfigError(AuditError):
    """The audit configuration (thresholds, conditions) is invalid."""


class ConditionUnavailable(AuditError):
    """A condition cannot run on this model (e.g. a chat condition for a model without a chat
    template): its gates are skipped with this reason instead of stopping the audit."""
