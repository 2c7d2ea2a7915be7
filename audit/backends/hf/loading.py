"""Loading causal LMs for the HF backend: a local directory or a hub id, through ``from_pretrained``. Remote code runs only when the user asks (``trust_remote_code``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from audit.errors import ModelLoadError


@dataclass
class LoadedModel:
    name: str
    model: Any  # transformers PreTrainedModel
    tokenizer: Any  # transformers PreTrainedTokenizerBase
    device: torch.device
    identity: dict = field(default_factory=dict)  # what makes results reproducible: path/id, revision, weight hash, dtype


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def pick_device(requested: str | None = None) -> torch.device:
    """The requested torch device (checked), else CUDA when present, else the CPU."""
    if not requested:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except (RuntimeError, ValueError):
        raise ModelLoadError(f"--device '{requested}' is not a torch device (e.g. cpu, cuda, cuda:1)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"--device '{requested}': CUDA is not available on this machine")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ModelLoadError(f"--device '{requested}' is not supported (cpu, cuda or mps)")
    return device


def pick_dtype(requested: str | None, device: torch.device) -> torch.dtype:
    """The requested dtype (checked), else bfloat16 on CUDA and float32 elsewhere."""
    name = requested or ("bfloat16" if device.type == "cuda" else "float32")
    if name not in DTYPES:
        raise ModelLoadError(f"--dtype '{requested}' is not one of {', '.join(DTYPES)}")
    return DTYPES[name]


DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")  # accelerate's placement strategies


def check_device_map(device_map: str | dict | None) -> None:
    """``--device-map``: one of accelerate's strategies, and accelerate installed (one clear line otherwise)."""
    if device_map is None or isinstance(device_map, dict):
        return
    if device_map not in DEVICE_MAPS:
        raise ModelLoadError(f"--device-map '{device_map}' is not one of {', '.join(DEVICE_MAPS)}")
    import importlib.util

    if importlib.util.find_spec("accelerate") is None:
        raise ModelLoadError(f"--device-map {device_map} needs the accelerate package: pip install 'bias-transfer-audit[gpu]' "
                             "(or pip install accelerate)")


def check_model_dir(path: Path, spec: str, *, allow_pickle: bool = False) -> None:
    """A local model directory has a config, a tokenizer and (unless pickle is allowed) safetensors weights."""
    if not path.is_dir():
        raise ModelLoadError(f"model path '{spec}' is a file; pass the directory that holds config.json")
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"model directory '{spec}' has no config.json: not a transformers model directory")
    if not (path / "tokenizer_config.json").is_file() and not (path / "tokenizer.json").is_file():
        raise ModelLoadError(f"model directory '{spec}' has no tokenizer (tokenizer.json or tokenizer_config.json)")
    if not allow_pickle and not list(path.glob("*.safetensors")):
        raise ModelLoadError(f"model directory '{spec}' has no safetensors weights; pickle weights load only with --allow-pickle")


def _weights_hash(directory: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(directory.glob("*.safetensors")) + sorted(directory.glob("*.bin")):
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def resolve_model_path(spec: str, *, allow_pickle: bool = False) -> tuple[str, Path | None]:
    """An existing directory -> itself, checked; else a hub id (None)."""
    path = Path(spec).expanduser()
    try:
        exists = path.exists()
    except OSError as exc:  # a name too long for the file system, a symlink loop
        shown = spec if len(spec) <= 80 else f"{spec[:60]}…({len(spec)} characters)"
        raise ModelLoadError(f"--model '{shown}': {exc.strerror}") from None
    if exists:
        check_model_dir(path, spec, allow_pickle=allow_pickle)
        return spec, path
    if spec.startswith(("/", ".", "~")) or spec.count("/") > 1:
        raise ModelLoadError(f"model '{spec}' not found: no such directory, and not a reference model or hub id")
    return spec, None


def load_model(
    spec: str,
    *,
    device: str | None = None,
    dtype: str | None = None,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    revision: str | None = None,
    device_map: str | dict | None = None,  # e.g. "auto": accelerate spreads a model too large for one GPU
) -> LoadedModel:
    """Load a causal LM and its tokenizer for scoring. Pads with EOS when the tokenizer has no pad token."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    check_device_map(device_map)
    name, path = resolve_model_path(spec, allow_pickle=allow_pickle)
    source = str(path) if path is not None else spec
    dev = pick_device(device)
    torch_dtype = pick_dtype(dtype, dev)
    common = {"trust_remote_code": trust_remote_code, "revision": revision}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **common)
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype=torch_dtype, use_safetensors=None if allow_pickle else True, device_map=device_map, **common
        )
    except Exception as exc:  # any failure inside from_pretrained is a broken or unsupported model
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"cannot load model '{spec}': {first}") from None
    embeddings = model.get_input_embeddings()
    n_rows = getattr(embeddings, "num_embeddings", None)
    if n_rows is not None and len(tokenizer) > n_rows:  # a token id past the matrix would crash mid-run
        raise ModelLoadError(f"model '{spec}': its tokenizer has {len(tokenizer)} tokens but the embedding matrix only "
                             f"{n_rows} rows; the tokenizer does not belong to these weights")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if device_map is None:
        model.to(dev)
    else:  # placed by accelerate; inputs go where the embeddings are
        dev = model.get_input_embeddings().weight.device
    model.eval()
    identity = {
        "model": name,
        "source": "local" if path is not None else "hub",
        "revision": revision or getattr(model.config, "_commit_hash", None),
        "weights_sha256": _weights_hash(path) if path is not None else None,
        "dtype": str(torch_dtype).replace("torch.", ""),
        "architecture": (model.config.architectures or [type(model).__name__])[0],
        "tokenizer": type(tokenizer).__name__,
    }
    if device_map is not None:  # provenance only: where layers run does not change what they compute
        identity["device_map"] = device_map if isinstance(device_map, str) else "custom"
    return LoadedModel(name=name, model=model, tokenizer=tokenizer, device=dev, identity=identity)
