"""``--backend-option KEY=VALUE`` for the openai-completions backend: parsed and range-checked, one line
naming the option when it is wrong. Without ``concurrency`` the backend chooses it from the server's answers."""

from __future__ import annotations

import math
from typing import Any

from audit.errors import ConfigError
from audit.backends.base import BackendOptions

_OPTIONS = {"tokenizer": str, "model": str, "api_key_env": str, "concurrency": int, "timeout": float, "add_bos": bool,
            "batch_size": int, "max_retries": int, "deadline": float, "score_by": str}
_CHOICES = {"score_by": ("auto", "forced", "echo")}  # forced: openai_forced; auto: echo, forced where echo is refused
_LEAST = {"concurrency": 1, "batch_size": 1, "max_retries": 0}  # integers: the least value that makes sense
_BOOLS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}


def _setting(key: str, raw: str) -> Any:
    """One ``--backend-option KEY=VALUE``, parsed and range-checked; one line naming it when it is wrong."""
    kind, where = _OPTIONS[key], f"--backend-option {key}={shown_option(raw)}"
    if kind is bool:
        if raw.strip().lower() not in _BOOLS:
            raise ConfigError(f"{where}: expected true or false")
        return _BOOLS[raw.strip().lower()]
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{where}: expected {'an integer' if kind is int else 'a number'}") from None
    if kind is float and not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{where}: expected a finite number of seconds greater than 0")
    if key in _LEAST and value < _LEAST[key]:
        raise ConfigError(f"{where}: must be at least {_LEAST[key]}")
    if kind is str and not value.strip():
        raise ConfigError(f"{where}: must not be empty")
    if key in _CHOICES and value not in _CHOICES[key]:
        raise ConfigError(f"{where}: expected one of {', '.join(_CHOICES[key])}")
    return value


def shown_option(raw: str) -> str:
    return raw if len(raw) <= 60 else raw[:60] + "..."


def _settings(options: BackendOptions) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, raw in options.extra.items():
        if key not in _OPTIONS:
            raise ConfigError(f"--backend-option {key}: not an option of openai-completions (known: {', '.join(_OPTIONS)})")
        out[key] = _setting(key, raw)
    if "tokenizer" not in out:
        raise ConfigError("openai-completions needs the tokenizer the server's model uses: --backend-option tokenizer=DIR|HUB_ID|FILE.gguf")
    return out
