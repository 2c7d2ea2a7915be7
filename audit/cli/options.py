"""The audit's options, declared once: the CLI (``bias-audit run --model``) and the pytest plugin
(``pytest --audit-model``) both read this table, and ``AuditOptions`` carries their values to
``audit.run.setup.build_session``."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class Option:
    name: str  # CLI --NAME, plugin --audit-NAME
    help: str
    metavar: str | None = None
    flag: bool = False  # store_true
    repeat: bool = False  # append
    deprecated: tuple[str, ...] = ()  # old names, still accepted

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")


OPTIONS: tuple[Option, ...] = (
    Option("model", "model spec (repeatable: models side by side): a reference model (reference-fair, reference-biased, "
           "reference-nontransfer), a model directory or hub id (hf:), or openai-completions:URL; default: reference-fair",
           "SPEC", repeat=True),
    Option("config", "config TOML (default: ./bias-audit.toml, else [tool.bias-audit] in ./pyproject.toml)", "FILE"),
    Option("preset", "built-in preset the config extends: default (intrinsic + zero-shot), study (every WinoBias condition), "
           "bbq (BBQ intrinsic + zero-shot) or paper-b (every BBQ condition and the debiasing study)", "NAME"),
    Option("data", "data: generated | winobias | DIR with the official WinoBias files, or NAME:SOURCE (e.g. bbq:DIR); "
           "repeatable: each dataset is audited with its own preset and one report shows them under one verdict", "SOURCE",
           repeat=True),
    Option("prompt-dir", "a directory of your own prompt formats (NAME.j2), searched before the built-in ones "
           "(repeatable; replaces config key prompt_dirs)", "DIR", repeat=True),
    Option("out", "where results.json and report.html are written (default: reports/)", "DIR"),
    Option("pdf", "also print the report to this PDF (needs Chromium)", "PDF"),
    Option("pdf-mode", "what --pdf prints: executive (verdict, summary and gate outcomes, at most 2 pages; the default) "
           "or full (the whole report)", "MODE"),
    Option("approved", "an approved earlier results.json: fail when a metric got significantly worse than there",
           "RESULTS_JSON", deprecated=("baseline",)),
    Option("device", "torch device (default: cuda when present, else cpu)", "DEVICE"),
    Option("dtype", "float32 | bfloat16 | float16", "DTYPE"),
    Option("device-map", "auto: spread a model too large for one GPU over the GPUs (needs accelerate)", "MAP"),
    Option("backend-option", "KEY=VALUE for the model's backend (repeatable), e.g. model=NAME tokenizer=DIR for a server",
           "KEY=VALUE", repeat=True),
    Option("trust-remote-code", "allow a model's own Python code to run", flag=True),
    Option("allow-pickle", "allow pickle (.bin) weights", flag=True),
    Option("no-cache", "neither read nor write the result cache ($BIAS_AUDIT_CACHE_DIR/results.sqlite)", flag=True),
    # What people change between runs, without a config file (each overrides its config key).
    Option("max-items", "audit a seeded subsample of about N items (config max_items; a smoke run: --max-items 200)", "N"),
    Option("seed", "seed of the subsample, few-shot examples and resampling (config seed)", "N"),
    Option("split", "dev | test | all: which split of the data is audited; all: both, each item's few-shot examples "
           "from the split it is not in (config split; each preset says which: `bias-audit list presets`)", "SPLIT"),
    Option("n-resamples", "bootstrap resamples per interval, 100 to 100000 (config n_resamples; default 1000)", "N"),
    Option("name", "NAME=MODEL: show model MODEL (one of --model) as NAME in the output and reports (repeatable)",
           "NAME=MODEL", repeat=True),
    Option("categories", "BBQ categories to audit, comma-separated (e.g. Age,Religion); same as bbq:DIR#Age,Religion",
           "LIST"),
)


@dataclass
class AuditOptions:
    """The values of ``OPTIONS`` for one run."""

    model: list[str] = field(default_factory=list)
    config: str | None = None
    preset: str | None = None
    data: list[str] | str | None = field(default_factory=list)  # a str is one source (API callers)
    prompt_dir: list[str] = field(default_factory=list)
    out: str | None = None
    pdf: str | None = None
    pdf_mode: str | None = None
    approved: str | None = None
    device: str | None = None
    dtype: str | None = None
    device_map: str | None = None
    backend_option: list[str] = field(default_factory=list)
    trust_remote_code: bool = False
    allow_pickle: bool = False
    no_cache: bool = False
    max_items: str | None = None
    seed: str | None = None
    split: str | None = None
    n_resamples: str | None = None
    name: list[str] = field(default_factory=list)
    categories: str | None = None

    @classmethod
    def from_namespace(cls, ns: Any, prefix: str = "") -> "AuditOptions":
        return cls(**{f.name: getattr(ns, prefix + f.name) for f in fields(cls)})

    def requested(self) -> bool:
        """Does this run ask for an audit at all (plain pytest runs of other projects do not)?"""
        return any((self.model, self.config, self.preset, self.data, self.approved))

    def data_sources(self) -> list[str]:
        """The ``--data`` sources given, in order (none: the config's)."""
        return [self.data] if isinstance(self.data, str) else list(self.data or [])

    def pytest_args(self) -> list[str]:
        """These values as the plugin's command-line flags."""
        out: list[str] = []
        for opt in OPTIONS:
            value = self.data_sources() if opt.dest == "data" else getattr(self, opt.dest)
            if opt.flag:
                out += [f"--audit-{opt.name}"] if value else []
            elif opt.repeat:
                for v in value:
                    out += [f"--audit-{opt.name}", v]
            elif value is not None:
                out += [f"--audit-{opt.name}", str(value)]
        return out


def _kwargs(opt: Option) -> dict:
    kw: dict[str, Any] = {"help": opt.help}
    if opt.flag:
        kw["action"] = "store_true"
    else:
        kw["metavar"] = opt.metavar
        if opt.repeat:
            kw.update(action="append", default=[])
    return kw


def add_cli_options(parser: argparse.ArgumentParser) -> None:
    for opt in OPTIONS:
        names = [f"--{opt.name}"] + [f"--{old}" for old in opt.deprecated]
        parser.add_argument(*names, dest=opt.dest, **_kwargs(opt))


def add_plugin_options(group) -> None:
    """``group``: a pytest option group (``parser.getgroup``)."""
    for opt in OPTIONS:
        names = [f"--audit-{opt.name}"] + [f"--audit-{old}" for old in opt.deprecated]
        group.addoption(*names, dest=f"audit_{opt.dest}", **_kwargs(opt))
