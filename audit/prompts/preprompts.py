"""Named pre-prompts: the generic ones (``prompts/preprompts.toml``), each dataset's own (its package's
``preprompts.toml``, handed over by ``audit.datasets``: ``add_preprompt_source``) and the debiasing
strategies' texts (``prompts/strategies.toml``), in that order; a condition names any of them."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Callable, Mapping

from audit.errors import ConfigError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

_SOURCES: list[Callable[[], Mapping[str, str]]] = []


def read_preprompts(package: str, name: str = "preprompts.toml") -> dict[str, str]:
    """The named texts of a package's TOML file (none when the package ships none)."""
    path = resources.files(package).joinpath(name)
    return dict(tomllib.loads(path.read_text(encoding="utf-8"))) if path.is_file() else {}


@functools.lru_cache(maxsize=1)
def preprompts() -> dict[str, str]:
    """The generic pre-prompts (``prompts/preprompts.toml``)."""
    return read_preprompts("audit.prompts")


@functools.lru_cache(maxsize=1)
def strategy_texts() -> dict[str, str]:
    """The debiasing strategies' texts (``prompts/strategies.toml``), named like pre-prompts."""
    return read_preprompts("audit.prompts", "strategies.toml")


def add_preprompt_source(source: Callable[[], Mapping[str, str]]) -> None:
    """More named texts (``audit.datasets``: every registered dataset's ``preprompts.toml``), read on use."""
    _SOURCES.append(source)


def known_preprompts() -> dict[str, str]:
    """Every name a condition may give as ``preprompt`` or ``followup``: generic, the datasets', strategies."""
    known = dict(preprompts())
    for source in _SOURCES:
        for name, text in source().items():
            known.setdefault(name, text)
    for name, text in strategy_texts().items():
        known.setdefault(name, text)
    return known


def preprompt_text(name: str) -> str:
    known = known_preprompts()
    try:
        return known[name]
    except KeyError:
        raise ConfigError(f"unknown pre-prompt '{name}' (known: {', '.join(known)}; or give preprompt_text)") from None
