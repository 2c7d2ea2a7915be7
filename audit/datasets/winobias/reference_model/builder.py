"""Building and caching the reference models: deterministic builds keyed by a hash of what they are
made from, in a temporary directory renamed into place under a file lock; ``python -m
audit.datasets.winobias.reference_model.builder build``."""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Iterator, Sequence


from audit.prompts.render import prompt_formats
from audit.paths import cache_dir, templates_dir

from audit.datasets.winobias.reference_model.planted import INTRINSIC, REFERENCE_MODELS, _spec, planted_association
from audit.datasets.winobias.reference_model.corpus import build_tokenizer
from audit.datasets.winobias.reference_model.trainer import PLAN, calibrate, install_bias, measure_margins, train_base

# --------------------------------------------------------------------------- build and cache

INFO_FILE = "reference.json"


def cache_root() -> Path:
    """Where reference models are kept: ``$BIAS_AUDIT_CACHE_DIR/reference`` (default ``~/.cache/bias-transfer-audit``)."""
    return cache_dir() / "reference"


@functools.lru_cache(maxsize=1)
def build_hash() -> str:
    """What the models are built from: this module (training code and plan), the prompt templates, the
    item generator and items, the prompt rendering, the pre-prompts and the occupation table."""
    from importlib import resources

    from audit.datasets.winobias import generated, items
    from audit.prompts import render

    h = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        h.update(label.encode() + b"\0" + hashlib.sha256(data).digest())

    # every module of this package (the planted rule, the tokenizer, the training code and plan)
    for source in (*sorted(Path(__file__).parent.glob("*.py")), *(Path(m.__file__) for m in (generated, items, render))):
        add(source.name, source.read_bytes())
    for fmt in prompt_formats():  # the WinoBias formats (BBQ's do not shape these models)
        add(f"{fmt}.j2", (templates_dir() / "prompts" / f"{fmt}.j2").read_bytes())
    for package, data in (("audit.prompts", "preprompts.toml"), ("audit.datasets.winobias", "preprompts.toml"),
                          ("audit.datasets.winobias", "occupations.csv")):
        add(f"{package}/{data}", resources.files(package).joinpath(data).read_bytes())
    import transformers  # the saved files follow its format

    add("transformers", transformers.__version__.encode())
    return h.hexdigest()[:12]


def _model_dir(name: str, digest: str) -> Path:
    return cache_root() / f"{name}-{digest}"


def reference_model_dir(name: str) -> Path:
    """The directory of reference model ``name`` (``from_pretrained``-loadable), built first if absent."""
    _spec(name)
    path = _model_dir(name, build_hash())
    if not (path / INFO_FILE).is_file():
        build_reference_models()
    return path


def build_reference_models(force: bool = False, log=None) -> dict[str, Path]:
    """Build every reference model not yet in the cache (all at once: they share one base network).

    Safe to call from concurrent processes: one builds, under a file lock, the others wait and find
    the result. Each model is written to a temporary directory and renamed into place.
    """
    from filelock import FileLock

    digest = build_hash()
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    dirs = {name: _model_dir(name, digest) for name in REFERENCE_MODELS}
    with FileLock(str(root / f"build-{digest}.lock")):
        missing = [name for name, path in dirs.items() if force or not (path / INFO_FILE).is_file()]
        if not missing:
            return dirs
        for stale in root.glob(f".tmp-*-{digest}-*"):  # left by an interrupted build
            shutil.rmtree(stale, ignore_errors=True)
        started = time.perf_counter()
        tokenizer = build_tokenizer()
        base, readout = train_base(tokenizer, log=log)
        calibrated, calibrated_readout = calibrate(base, readout, tokenizer, log=log)
        trained_s = time.perf_counter() - started
        margins = measure_margins(calibrated, tokenizer)
        if log:
            log(f"trained the networks in {trained_s:.1f} s; calibrated gold margins {margins[0]:.2f} / {margins[1]:.2f} nats")
        for name in missing:
            if _spec(name).rule == "fair":
                model = base
            else:
                model = copy.deepcopy(calibrated)
                install_bias(model, calibrated_readout.weight.detach(), name, tokenizer, margins)
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-{digest}-", dir=root))
            with _quiet_transformers():
                model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            info = _model_info(name, digest, margins, trained_s)
            (tmp / INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            if dirs[name].exists():  # only with force
                shutil.rmtree(dirs[name])
            tmp.chmod(0o755)
            os.rename(tmp, dirs[name])
            if log:
                log(f"built {name} in {dirs[name]} ({time.perf_counter() - started:.1f} s)")
    return dirs


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No progress bars while saving."""
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def _model_info(name: str, digest: str, margins: tuple[float, float], trained_s: float) -> dict:
    spec = _spec(name)
    return {
        "name": name,
        "rule": spec.rule,
        "description": spec.description,
        "threshold": spec.threshold,
        "build_hash": digest,
        "gold_margin": {"intrinsic": margins[0], "instructed": margins[1]} if spec.rule != "fair" else None,
        "planted_association": {
            "intrinsic": planted_association(name, INTRINSIC),
            "instructed": planted_association(name, "zero_shot"),
        },
        "training_plan": asdict(PLAN),
        "training_seconds": round(trained_s, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audit.datasets.winobias.reference_model.builder", description="Build the reference models.")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build (or find) reference models and print their directories")
    build.add_argument("names", nargs="*", help=f"models to build (default: all; known: {', '.join(REFERENCE_MODELS)})")
    build.add_argument("--all", action="store_true", help="all reference models (the default)")
    build.add_argument("--force", action="store_true", help="rebuild even if cached")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in REFERENCE_MODELS]
    if unknown:
        parser.error(f"unknown reference model(s): {', '.join(unknown)} (known: {', '.join(REFERENCE_MODELS)})")
    started = time.perf_counter()
    dirs = build_reference_models(force=args.force, log=lambda msg: print(msg, file=sys.stderr))
    for name in args.names or list(REFERENCE_MODELS):
        print(f"{name}\t{dirs[name]}")
    print(f"done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":  # run the package's copy of this module, so that one build serves both
    from audit.datasets.winobias.reference_model.builder import main as package_main

    sys.exit(package_main())
