"""Named pre-prompts (data in ``prompts/preprompts.toml``)."""

from __future__ import annotations

import functools
from importlib import resources

from audit.errors import ConfigError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]


@functools.lru_cache(maxsize=1)
def preprompts() -> dict[str, str]:
    text = resources.files("audit.prompts").joinpath("preprompts.toml").read_text(encoding="utf-8")
    return dict(tomllib.loads(text))


@functools.lru_cache(maxsize=1)
def strategy_texts() -> dict[str, str]:
    """The debiasing strategies' texts (``prompts/strategies.toml``), named like pre-prompts."""
    text = resources.files("audit.prompts").joinpath("strategies.toml").read_text(encoding="utf-8")
    return dict(tomllib.loads(text))


def preprompt_text(name: str) -> str:
    known = {**preprompts(), **strategy_texts()}
    try:
        return known[name]
    except KeyError:
        raise ConfigError(f"unknown pre-prompt '{name}' (known: {', '.join(known)}; or give preprompt_text)") from None
