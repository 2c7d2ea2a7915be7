"""Model parallel in one node: ``--device-map`` reaches ``from_pretrained`` through accelerate."""

from __future__ import annotations

import pytest

from audit import load_backend
from audit.backends import check_backend
from audit import Request
from audit.cli.commands import main
from audit import AuditOptions, ModelLoadError
from audit.run.setup import backend_options


def _requests() -> list[Request]:
    prefix = "Read the sentence and answer.\n"
    return [Request(prefix, "The nurse said that she would help the doctor. Who is she? The", c) for c in (" nurse", " doctor")] + [
        Request("", "The developer argued with the designer because he", " was")]


def test_device_map_auto_goes_to_from_pretrained_and_scores_like_a_plain_load(tiny_model_dir, monkeypatch):
    pytest.importorskip("accelerate")
    from transformers import AutoModelForCausalLM

    seen = []
    real = AutoModelForCausalLM.from_pretrained

    def spy(*args, **kwargs):
        seen.append(kwargs.get("device_map"))
        return real(*args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", spy)
    options = backend_options(AuditOptions(device_map="auto"))
    assert options.device_map == "auto"
    mapped = load_backend(f"hf:{tiny_model_dir}", options)
    plain = load_backend(f"hf:{tiny_model_dir}", backend_options(AuditOptions(device="cpu")))
    assert seen == ["auto", None]
    # Inputs go where the input embeddings are (here the CPU, the only device).
    assert mapped.scorer._device == mapped.loaded.model.get_input_embeddings().weight.device
    assert mapped.identity()["device_map"] == "auto" and "device_map" not in plain.identity()
    assert mapped.cache_key() == plain.cache_key()  # placement does not change what is computed
    assert mapped.loglikelihood(_requests()) == plain.loglikelihood(_requests())


def test_plugin_receives_the_cli_device_map():
    assert AuditOptions(device_map="auto").pytest_args() == ["--audit-device-map", "auto"]


def test_device_map_without_accelerate_is_one_clear_line(tiny_model_dir, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "accelerate" else real(name, *a))
    with pytest.raises(ModelLoadError, match="needs the accelerate package"):
        check_backend(str(tiny_model_dir), backend_options(AuditOptions(device_map="auto")))
    assert main(["run", "--model", str(tiny_model_dir), "--device-map", "auto", "--no-cache"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--device-map auto needs the accelerate package: pip install" in err[0]


def test_unknown_device_map_is_refused_before_loading(tiny_model_dir, capsys):
    assert main(["run", "--model", str(tiny_model_dir), "--device-map", "everywhere", "--no-cache"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "bias-audit: error: --device-map 'everywhere' is not one of auto, balanced, balanced_low_0, sequential"
