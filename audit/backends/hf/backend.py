"""The Hugging Face backend: a transformers causal LM in this process, scored by the fast engine
(``audit.backends.hf.scorer``). Model specs: ``hf:PATH_OR_HUB_ID`` or a bare path / hub id."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

from audit.backends.base import Backend, BackendOptions, Request
from audit.backends.hf.loading import (LoadedModel, check_device_map, load_model, pick_device, pick_dtype,
                                      resolve_model_path)
from audit.backends.hf.scorer import Scorer
from audit.errors import AuditError
from audit.prompts.stopping import StopRule


class HFBackend(Backend):
    """A loaded transformers model and its tokenizer behind the backend interface."""

    def __init__(self, loaded: LoadedModel, batch_size: int | str = "auto", *, progress: bool | None = None):
        self.loaded = loaded
        self.name = loaded.name
        self.scorer = Scorer(loaded, batch_size=batch_size, progress=progress)
        self.chat_template = getattr(loaded.tokenizer, "chat_template", None) or None
        self.device_type = loaded.device.type

    @property
    def tokenizer(self):
        return self.loaded.tokenizer

    def loglikelihood(self, requests: Sequence[Request]) -> list[float]:
        return self.scorer.loglikelihood(requests)

    def loglikelihood_progressive(self, requests: Sequence[Request], on_scored) -> list[float]:
        return self.scorer.loglikelihood(requests, on_scored=on_scored)

    def generate(self, prompts: Sequence[str], max_new_tokens: int = 16) -> list[str]:
        return self.scorer.generate(prompts, max_new_tokens=max_new_tokens)

    def generate_until(self, prompts: Sequence[str], max_new_tokens: int, stop: StopRule) -> list[str]:
        return self.scorer.generate(prompts, max_new_tokens=stop.tokens(max_new_tokens), stop=stop)

    def generate_until_progressive(self, prompts: Sequence[str], max_new_tokens: int, stop: StopRule,
                                   on_generated) -> list[str]:
        return self.scorer.generate(prompts, max_new_tokens=stop.tokens(max_new_tokens), stop=stop,
                                    on_generated=on_generated)

    def loglikelihood_shard(self, requests: Sequence[Request], rank: int, size: int) -> list[float | None]:
        """This rank's batches of a data-parallel call (None elsewhere): see ``audit.backends.distributed``."""
        return self.scorer.loglikelihood(requests, shard=(rank, size))

    def generate_shard(self, prompts: Sequence[str], max_new_tokens: int, rank: int, size: int,
                       stop: StopRule | None = None) -> list[str | None]:
        budget = stop.tokens(max_new_tokens) if stop is not None else max_new_tokens
        return self.scorer.generate(prompts, max_new_tokens=budget, stop=stop, shard=(rank, size))

    def release_model(self) -> None:
        """Drop the weights (the scorer reads the model through ``self.loaded``, nothing else holds it) and hand
        the freed memory back; scoring after this is an error."""
        import gc
        import weakref

        from audit.backends.hf.generation import release_freed_memory

        model, self.loaded.model = self.loaded.model, None
        gone = weakref.ref(model) if model is not None else (lambda: None)
        del model
        gc.collect()
        if gone() is not None:  # a reference cycle holds it, frozen by the run (audit.run.collector): free it
            gc.unfreeze()
            gc.collect()
        release_freed_memory(self.loaded.device)

    def identity(self) -> dict:
        return dict(self.loaded.identity)

    def cache_key(self) -> str:
        return model_cache_key(self.loaded)

    def apply_chat_template(self, messages: list[dict[str, str]]) -> str:
        if not self.chat_template:
            return super().apply_chat_template(messages)
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(ids) for ids in self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]]


def check_hf(spec: str, options: BackendOptions) -> None:
    """What can be checked before loading weights: the path, device and dtype."""
    resolve_model_path(spec, allow_pickle=options.allow_pickle)
    pick_dtype(options.dtype, pick_device(options.device))
    check_device_map(options.device_map)
    if options.extra:
        raise AuditError(f"--backend-option {next(iter(options.extra))}: the hf backend takes no backend options")


def load_hf(spec: str, options: BackendOptions, *, name: str | None = None, source: str | None = None) -> HFBackend:
    loaded = load_model(
        spec, device=options.device, dtype=options.dtype, trust_remote_code=options.trust_remote_code,
        allow_pickle=options.allow_pickle, device_map=options.device_map,
    )
    if name is not None:
        loaded.name = name
        loaded.identity["model"] = name
    if source is not None:
        loaded.identity["source"] = source
    return HFBackend(loaded, batch_size=options.batch_size)


# --- the cache key: what changes a score -------------------------------------------------------------

# Files that define a tokenizer's behaviour (whichever of them a model directory has).
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json",
    "vocab.txt", "merges.txt", "tokenizer.model", "spiece.model", "chat_template.jinja", "chat_template.json",
)


def tokenizer_fingerprint(tokenizer) -> str:
    """A hash of the tokenizer's files when it was loaded from a directory, else of its vocabulary,
    special tokens and chat template (what a hub tokenizer's files decide)."""
    h = hashlib.sha256()
    h.update(type(tokenizer).__name__.encode())
    source = str(getattr(tokenizer, "name_or_path", "") or "")
    directory = Path(source) if source else None
    files = [directory / f for f in TOKENIZER_FILES if directory and directory.is_dir() and (directory / f).is_file()]
    if files:
        for f in files:
            h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    else:
        vocab = tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else {}
        h.update(json.dumps(sorted(vocab.items()), ensure_ascii=False).encode("utf-8"))
        h.update(json.dumps(getattr(tokenizer, "chat_template", None)).encode())
    # load_model may set a pad token; padding side and special tokens can change encodings.
    special = {k: str(v) for k, v in sorted(getattr(tokenizer, "special_tokens_map", {}).items())}
    h.update(json.dumps([special, getattr(tokenizer, "padding_side", None)], sort_keys=True).encode())
    return h.hexdigest()[:16]


def _model_config_hash(model) -> str | None:
    """The effective model config (rope scaling, attention settings...), without paths and versions."""
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "to_dict"):
        return None
    settings = {k: v for k, v in config.to_dict().items() if not k.startswith("_") and k != "transformers_version"}
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def model_cache_key(loaded: LoadedModel) -> str:
    """What makes a model's scores reproducible: its identity (hub id and revision, or the weights'
    hash for a directory; architecture, dtype, tokenizer class), its effective config, the tokenizer's
    files, and the device type (CPU and GPU kernels differ in the last bits)."""
    ident = loaded.identity
    parts = {k: ident.get(k) for k in ("model", "revision", "weights_sha256", "dtype", "architecture", "tokenizer")}
    if ident.get("weights_sha256"):
        # A local directory is its content: the same weights under another path are the same model.
        parts["model"] = None
    parts["config_sha256"] = _model_config_hash(loaded.model)
    parts["tokenizer_sha256"] = tokenizer_fingerprint(loaded.tokenizer)
    parts["device"] = getattr(loaded.device, "type", str(loaded.device))
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()[:32]


