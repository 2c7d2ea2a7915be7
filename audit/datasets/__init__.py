"""Datasets: what the audit asks about. One interface (``Dataset``), one registry by name.

``--data`` (config key ``data``) names a dataset and its source as ``NAME:SOURCE``; a bare
``generated``, ``winobias`` or directory is WinoBias (``winobias:generated`` ...). Add a dataset: a
package with a ``Dataset`` subclass and its ``gates.py``, then one line
``register_dataset("name", "module:Class", gates="module.gates")`` -- or, from another package, an
entry point in the group ``bias_audit.datasets`` (``audit.plugins``).
"""

from __future__ import annotations

import functools
import importlib
from typing import Callable, Mapping

from audit.datasets.base import ConditionKnob, Dataset
from audit.errors import DataError
from audit.gates.registry import register_gate_module
from audit.plugins import plugin_entry_points
from audit.prompts.preprompts import add_preprompt_source, read_preprompts
from audit.results.check import set_number_maps

_REGISTRY: dict[str, Callable[[], Dataset] | str] = {}
_INSTANCES: dict[str, Dataset] = {}
DEFAULT_DATASET = "winobias"


_BUILTIN: set[str] = set()


def register_dataset(name: str, factory: Callable[[], Dataset] | str, gates: str | None = None) -> None:
    """``factory``: a Dataset class (or zero-argument callable), or "module:Class" imported on first use;
    ``gates``: the module that registers the dataset's gates (imported on the first gate lookup)."""
    _REGISTRY[name] = factory
    _INSTANCES.pop(name, None)
    if gates:
        register_gate_module(gates)


def _load_plugins() -> None:
    """Datasets of installed packages (entry points ``bias_audit.datasets``); a built-in name wins."""
    for ep in plugin_entry_points("bias_audit.datasets"):
        if ep.name not in _BUILTIN and _REGISTRY.get(ep.name) != ep.value:
            register_dataset(ep.name, ep.value)


def dataset_names() -> list[str]:
    _load_plugins()
    return sorted(_REGISTRY)


def get_dataset(name: str) -> Dataset:
    if name not in _REGISTRY:
        _load_plugins()
    if name not in _REGISTRY:
        raise DataError(f"unknown dataset '{name}' (known: {', '.join(dataset_names())})")
    if name not in _INSTANCES:
        factory = _REGISTRY[name]
        if isinstance(factory, str):
            module, _, attr = factory.partition(":")
            factory = getattr(importlib.import_module(module), attr)
        dataset = factory()
        dataset.name = name
        _INSTANCES[name] = dataset
    return _INSTANCES[name]


def dataset_package(name: str) -> str:
    """The package a registered dataset lives in (its ``presets/`` folder holds its presets), without
    importing the dataset: the module of "module:Class", or that module's package when it is a module."""
    import importlib.util

    factory = _REGISTRY[name]
    module = factory.partition(":")[0] if isinstance(factory, str) else factory.__module__
    spec = importlib.util.find_spec(module)
    return module if spec is not None and spec.submodule_search_locations is not None else module.rpartition(".")[0]


def preset_files() -> dict[str, object]:
    """Every built-in and plugin dataset's presets: name -> the TOML file (``PACKAGE/presets/NAME.toml``).
    A preset name is unique; the first dataset (built-ins first, in registration order) that ships it wins."""
    from importlib import resources

    _load_plugins()
    found: dict[str, object] = {}
    for name in list(_REGISTRY):
        try:
            folder = resources.files(dataset_package(name)).joinpath("presets")
        except (ImportError, ValueError, TypeError):  # a plugin that cannot be found: it says so when used
            continue
        if folder.is_dir():
            for entry in sorted(folder.iterdir(), key=lambda p: p.name):
                if entry.name.endswith(".toml"):
                    found.setdefault(entry.name[:-5], entry)
    return found


def condition_knobs() -> dict[str, ConditionKnob]:
    """The few-shot composition keys a condition's config table may set: every registered dataset's
    ``condition_knobs`` (built-ins first; a key two datasets declare keeps the first declaration). A plugin
    dataset that cannot be imported adds none (it says so when used)."""
    _load_plugins()
    knobs: dict[str, ConditionKnob] = {}
    for name in list(_REGISTRY):
        try:
            declared = get_dataset(name).condition_knobs
        except ImportError:
            continue
        if isinstance(declared, Mapping):  # (a plain tuple of names reads keys another dataset declares)
            for key, knob in declared.items():
                knobs.setdefault(key, knob)
    return knobs


def summary_number_maps() -> dict[str, str]:
    """Every registered dataset's ``summary_number_maps`` (the record checker's, ``audit.results.check``)."""
    _load_plugins()
    maps: dict[str, str] = {}
    for name in list(_REGISTRY):
        try:
            maps.update(get_dataset(name).summary_number_maps)
        except ImportError:
            continue
    return maps


@functools.lru_cache(maxsize=None)
def _package_preprompts(package: str) -> dict[str, str]:
    return read_preprompts(package)


def dataset_preprompts() -> dict[str, str]:
    """The pre-prompts every registered dataset ships (``PACKAGE/preprompts.toml``), in registration order;
    a name is unique (the first dataset that ships it wins). A plugin that cannot be found adds none."""
    _load_plugins()
    texts: dict[str, str] = {}
    for name in list(_REGISTRY):
        try:
            found = _package_preprompts(dataset_package(name))
        except (ImportError, ValueError, TypeError):  # a plugin that cannot be found: it says so when used
            continue
        for key, text in found.items():
            texts.setdefault(key, text)
    return texts


def parse_data_spec(spec: str) -> tuple[str, str]:
    """(dataset name, source): ``bbq:DIR`` -> ("bbq", DIR); a bare source is WinoBias's."""
    name, sep, source = spec.partition(":")
    if sep and name not in _REGISTRY:
        _load_plugins()
    if sep and name in _REGISTRY:
        return name, source
    return DEFAULT_DATASET, spec


def resolve_data(spec: str) -> tuple[Dataset, str]:
    name, source = parse_data_spec(spec)
    return get_dataset(name), source


register_dataset("winobias", "audit.datasets.winobias:WinoBias", gates="audit.datasets.winobias.gates")
register_dataset("bbq", "audit.datasets.bbq.dataset:BBQ", gates="audit.datasets.bbq.gates")
register_dataset("crows-pairs", "audit.datasets.crows_pairs.dataset:CrowsPairs", gates="audit.datasets.crows_pairs.gates")
_BUILTIN.update(_REGISTRY)
set_number_maps(summary_number_maps)
add_preprompt_source(dataset_preprompts)

__all__ = ["ConditionKnob", "Dataset", "condition_knobs", "dataset_names", "dataset_package", "preset_files", "get_dataset", "parse_data_spec", "register_dataset", "resolve_data"]
