"""Backends: where the audited model runs. One interface (``Backend``), one registry by scheme.

A model spec names its backend by a scheme prefix; a spec without a known scheme goes to ``hf``:

| spec | backend |
|---|---|
| ``hf:PATH_OR_HUB_ID``, ``PATH``, ``org/name`` | transformers in this process (``audit.backends.hf``) |
| ``reference:NAME``, ``reference-fair`` ... | a built-in reference model with planted bias (``audit.datasets.winobias.reference_model``) |
| ``openai-completions:URL`` | an OpenAI-compatible completions server: vLLM, SGLang, llama.cpp (``audit.backends.openai_completions``) |

Add a backend: a module with a ``Backend`` subclass, a ``load(target, options)`` and optionally a
``check(target, options)`` that validates the spec without loading weights; then one line
``register_backend("scheme", load, check)`` -- or, from another package, an entry point in the group
``bias_audit.backends`` naming the ``load`` function (its module's ``check``, if any, checks a spec).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from audit.backends.base import Backend, BackendOptions, Request
from audit.errors import ModelLoadError
from audit.plugins import plugin_entry_points

Loader = Callable[[str, BackendOptions], Backend]
Checker = Callable[[str, BackendOptions], None]


@dataclass(frozen=True)
class BackendEntry:
    scheme: str
    load: Loader | str  # a callable, or "module:function" imported on first use (keeps `import audit` light)
    check: Checker | str | None = None
    description: str = ""
    names: tuple[str, ...] | str = ()  # bare model specs this scheme answers to (or "module:attribute" naming them)


_REGISTRY: dict[str, BackendEntry] = {}
_BUILTIN: set[str] = set()
DEFAULT_SCHEME = "hf"


def register_backend(scheme: str, load: Loader | str, check: Checker | str | None = None, description: str = "",
                     names: tuple[str, ...] | str = ()) -> None:
    """Make ``scheme:TARGET`` model specs load through ``load`` (replacing an earlier registration); ``names``:
    bare specs that mean ``scheme:NAME`` (a tuple, or "module:attribute" naming a collection, read on first use)."""
    _REGISTRY[scheme] = BackendEntry(scheme, load, check, description, names)


def _load_plugins() -> None:
    """Backends of installed packages (entry points ``bias_audit.backends``); a built-in scheme wins."""
    for ep in plugin_entry_points("bias_audit.backends"):
        if ep.name in _BUILTIN or (ep.name in _REGISTRY and _REGISTRY[ep.name].load == ep.value):
            continue
        module = ep.value.partition(":")[0]
        description = f"from the installed package {ep.dist.name}" if ep.dist is not None else f"plugin {module}"
        register_backend(ep.name, ep.value, _PluginCheck(module), description)


@dataclass(frozen=True)
class _PluginCheck:
    """A plugin module's ``check(target, options)``, when it has one."""

    module: str

    def __call__(self, target: str, options: BackendOptions) -> None:
        check = getattr(importlib.import_module(self.module), "check", None)
        if check is not None:
            check(target, options)


def backend_schemes() -> dict[str, str]:
    _load_plugins()
    return {scheme: entry.description for scheme, entry in _REGISTRY.items()}


def _resolve(fn):
    if isinstance(fn, str):
        module, _, name = fn.partition(":")
        return getattr(importlib.import_module(module), name)
    return fn


def _bare_scheme(spec: str) -> str | None:
    """The scheme that registered ``spec`` as one of its bare names, if any."""
    for entry in _REGISTRY.values():
        if entry.names and spec in _resolve(entry.names):
            return entry.scheme
    return None


def parse_spec(spec: str) -> tuple[str, str]:
    """(scheme, target) of a model spec: ``openai-completions:http://h/v1`` -> its scheme and the URL;
    a bare name a backend registered (``reference-fair``) -> its scheme; anything else without a registered
    scheme -> ``hf``."""
    scheme, sep, target = spec.partition(":")
    if sep and scheme not in _REGISTRY:
        _load_plugins()
    if sep and scheme in _REGISTRY:
        return scheme, target
    return _bare_scheme(spec) or DEFAULT_SCHEME, spec


def check_backend(spec: str, options: BackendOptions) -> None:
    """Everything about a spec that can be checked without loading the model; one clear line on a mistake."""
    if not spec.strip():
        raise ModelLoadError("--model: empty model name")
    scheme, target = parse_spec(spec)
    if not target:
        raise ModelLoadError(f"model '{spec}': nothing after '{scheme}:'")
    check = _REGISTRY[scheme].check
    if check is not None:
        _resolve(check)(target, options)


def load_backend(spec: str, options: BackendOptions) -> Backend:
    scheme, target = parse_spec(spec)
    backend = _resolve(_REGISTRY[scheme].load)(target, options)
    backend.name = spec
    return backend


register_backend("hf", "audit.backends.hf.backend:load_hf", "audit.backends.hf.backend:check_hf",
                 "transformers in this process (a local directory or a hub id)")
# the datasets' reference models (their ground truth: a planted bias), named by "module:function" so that
# importing the backends imports no dataset
register_backend("reference", "audit.datasets.winobias.reference_model:load_reference",
                 "audit.datasets.winobias.reference_model:check_reference",
                 "a built-in reference model with planted bias (reference-fair, reference-biased, reference-nontransfer)",
                 names="audit.datasets.winobias.reference_model.planted:REFERENCE_MODELS")
register_backend("reference-bbq", "audit.datasets.bbq.reference_model:load_reference_bbq",
                 "audit.datasets.bbq.reference_model:check_reference_bbq",
                 "a planted-rule BBQ reference backend, not a neural LM (reference-bbq:planted, reference-bbq:fair)")
register_backend("openai-completions", "audit.backends.openai_completions:load_openai_completions",
                 "audit.backends.openai_completions:check_openai_completions",
                 "an OpenAI-compatible completions server returning prompt log-probabilities (vLLM, SGLang, llama.cpp)")

_BUILTIN.update(_REGISTRY)

__all__ = ["Backend", "BackendOptions", "Request", "backend_schemes", "check_backend", "load_backend", "parse_spec",
           "register_backend"]
