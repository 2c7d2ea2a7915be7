"""Extension from outside: a package adds datasets, backends and gates by declaring entry points.

| group | name | value |
|---|---|---|
| ``bias_audit.datasets`` | the dataset name (``--data NAME:SOURCE``) | ``"module:DatasetClass"`` |
| ``bias_audit.backends`` | the scheme (``--model SCHEME:TARGET``) | ``"module:load"`` (the module's ``check``, if any, validates a spec) |
| ``bias_audit.gates`` | any | ``"module"`` whose import calls ``audit.gates.register_gate`` |

Each registry reads its own group lazily, on its first lookup, beside its built-ins; a built-in name
wins over a plugin's. This module imports nothing from ``audit`` (every layer may use it).
"""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint, entry_points

GROUPS = ("bias_audit.datasets", "bias_audit.backends", "bias_audit.gates")
_seen: dict[str, tuple] = {}


def plugin_entry_points(group: str) -> list[EntryPoint]:
    """The entry points of ``group`` installed now (re-read when ``sys.path`` changes)."""
    key = tuple(sys.path)
    cached = _seen.get(group)
    if cached is None or cached[0] != key:
        _seen[group] = (key, list(entry_points(group=group)))
    return _seen[group][1]


def refresh() -> None:
    """Forget what was read (after installing a plugin at run time)."""
    _seen.clear()
