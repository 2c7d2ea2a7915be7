"""Requests per second through an OpenAI-compatible completions server: our ``openai-completions``
backend against lm-evaluation-harness's ``local-completions`` on the same server and requests, the
log-likelihoods compared; optionally the HF scorer on the same weights too.

Both score the same WinoBias-style cloze requests (the generated benchmark, a prompt format, k
shots; one request per candidate). Ours runs as an audit runs it: its start-up probe (alignment,
prompt form, requests in flight chosen from the server's answers) is excluded from the timing.
lm-eval runs as a user runs it against this server: ``tokenized_requests=False`` (llama-cpp-python
refuses token-id prompts), ``batch_size=1`` (it takes one prompt per request) and ``num_concurrent``
equal to ours (``--peer-concurrency`` overrides; lm-eval's own default is 1); the settings are
printed. Throughput: requests per second (wall clock) for each, and ours as a ratio to lm-eval's.
Agreement: max |difference| of the log-likelihoods (nats); the ``--tolerance`` (1e-4) decides.

BOS: llama-cpp-python's echoed log-probabilities are right only after a BOS, which its echo drops.
The server started here puts BOS in front itself (``--kv_overrides tokenizer.ggml.add_bos_token=bool:true``,
what most GGUF models declare; SmolLM2's does not), so both clients send plain text and both are
right. ``--no-server-bos`` starts it as the GGUF declares: ours then sends BOS itself (``--add-bos``),
and lm-eval, which counts the BOS it is given as a context token, sums the wrong positions (shown).

    # start llama-cpp-python's server on the SmolLM2-135M-Instruct GGUF (the test model) itself
    python benchmarks/bench_server.py --items 40

    # a running vLLM server; the HF side on the same checkpoint
    vllm serve /models/Llama-3.1-8B &
    python benchmarks/bench_server.py --url http://127.0.0.1:8000/v1 --tokenizer /models/Llama-3.1-8B \\
        --hf-model /models/Llama-3.1-8B --device cuda --dtype bfloat16 --items 640 --shots 4

``--skip-lm-eval`` / ``--skip-hf`` leave a peer out. Exit status: 0, or 1 where the log-likelihoods
differ beyond the tolerance, 2 on a setup error (one line).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's audit package
sys.path.insert(0, str(Path(__file__).resolve().parent))

from audit.datasets.winobias.generated import generate_items  # noqa: E402
from audit.prompts.render import continuation, render_prompt  # noqa: E402
from audit.backends.base import Request  # noqa: E402

MODELS = Path(os.environ.get("BIAS_AUDIT_MODEL_CACHE") or Path.home() / ".cache" / "bias-transfer-audit" / "test-models")
GGUF = MODELS / "SmolLM2-135M-Instruct.Q4_1.gguf"
ALIAS = "smollm2"


def build_requests(fmt: str, items: int, shots: int, bos: str) -> tuple[list[Request], int]:
    pool = generate_items(0)
    chosen = pool[:: max(1, len(pool) // items)][:items]
    demos = [it for it in pool if it.split == "dev"][:shots]
    out = []
    for item in chosen:
        prompt = render_prompt(fmt, item, demos if fmt != "intrinsic" else ())
        out += [Request(bos + prompt.prefix, prompt.query, continuation(c)) for c in item.candidates]
    return out, len(chosen)


def load_hf(spec: str, device: str | None, dtype: str | None):
    """A transformers directory / hub id through the audit's loader, or a .gguf file (dequantised)."""
    if spec.endswith(".gguf"):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from audit.backends.hf.loading import LoadedModel, pick_device

        path, dev = Path(spec), pick_device(device)
        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name).to(dev).eval()
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        return LoadedModel(name=spec, model=model, tokenizer=tok, device=torch.device(dev))
    from audit.backends.hf.loading import load_model

    return load_model(spec, device=device, dtype=dtype)


def lm_eval_loglikelihood(url: str, model: str, tokenizer: str, requests: list[Request], *, concurrency: int,
                          timeout: float) -> tuple[list[float], dict, float]:
    """lm-eval's ``local-completions`` on ``requests``: its log-likelihoods, the settings it ran with, and the
    seconds its ``loglikelihood`` took (loading the tokenizer is not counted, as our probe is not)."""
    from lm_eval.api.instance import Instance
    from lm_eval.models.openai_completions import LocalCompletionsAPI

    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    settings = {"base_url": url + "/completions", "model": model, "tokenizer": tokenizer,
                "tokenizer_backend": "huggingface", "tokenized_requests": False, "batch_size": 1,
                "num_concurrent": concurrency, "max_retries": 3, "timeout": int(timeout)}
    lm = LocalCompletionsAPI(**settings)
    instances = [Instance(request_type="loglikelihood", doc={}, arguments=(r.context, r.continuation), idx=i)
                 for i, r in enumerate(requests)]
    start = time.perf_counter()
    scores = [ll for ll, _greedy in lm.loglikelihood(instances, disable_tqdm=True)]
    return scores, settings, time.perf_counter() - start


def compare(name: str, ours: list[float], theirs: list[float], tolerance: float) -> bool:
    diffs = [abs(a - b) for a, b in zip(ours, theirs)]
    same = [(a0 > a1) == (b0 > b1) for a0, a1, b0, b1 in zip(ours[::2], ours[1::2], theirs[::2], theirs[1::2])]
    worst = max(range(len(diffs)), key=diffs.__getitem__)
    ok = max(diffs) <= tolerance
    print(f"agree    ours vs {name}: choice {sum(same)}/{len(same)}; |diff| mean {statistics.mean(diffs):.2e}, "
          f"max {max(diffs):.2e} nats (request {worst}: {ours[worst]:.5f} vs {theirs[worst]:.5f}) -> "
          f"{'SAME' if ok else 'DIFFERENT'} within {tolerance:g}")
    return ok


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="a running server's base URL, e.g. http://127.0.0.1:8000/v1 (default: start "
                                  "llama-cpp-python's server on --gguf)")
    ap.add_argument("--gguf", default=str(GGUF), help="GGUF file for the server this script starts")
    ap.add_argument("--server-threads", type=int, default=2, help="--n_threads of the started server")
    ap.add_argument("--server-bos", action=argparse.BooleanOptionalAction, default=True,
                    help="the started server puts BOS in front of each prompt (default: yes)")
    ap.add_argument("--model-name", help="served model name (default: the first one /v1/models lists)")
    ap.add_argument("--tokenizer", help="tokenizer directory, hub id or .gguf file (default with --gguf: the "
                                        "converted test-model directory, else the GGUF file)")
    ap.add_argument("--hf-model", help="the same weights for the HF scorer (directory, hub id or .gguf)")
    ap.add_argument("--skip-hf", action="store_true", help="no HF scorer (the default unless --hf-model)")
    ap.add_argument("--skip-lm-eval", action="store_true", help="no lm-eval local-completions")
    ap.add_argument("--format", default="zero_shot", help="prompt format (templates/prompts)")
    ap.add_argument("--items", type=int, default=40)
    ap.add_argument("--shots", type=int, default=0)
    ap.add_argument("--add-bos", action=argparse.BooleanOptionalAction, default=None,
                    help="we send BOS in front of each prompt (default: where the started server does not)")
    ap.add_argument("--concurrency", type=int, help="ours: requests in flight (default: chosen by the probe)")
    ap.add_argument("--peer-concurrency", type=int, help="lm-eval's num_concurrent (default: the same as ours)")
    ap.add_argument("--batch-size", type=int, default=16, help="prompts per HTTP request where the server allows")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--tolerance", type=float, default=1e-4, help="nats: the largest difference counted as the same")
    ap.add_argument("--api-key-env", help="environment variable holding the API key")
    ap.add_argument("--device")
    ap.add_argument("--dtype")
    ap.add_argument("--hf-batch-size", default="auto")
    args = ap.parse_args(argv)

    from audit.errors import AuditError
    from llama_cpp_server import ServerStartError, llama_cpp_server

    started = args.url is None
    if started:
        if not Path(args.gguf).is_file():
            print(f"bench_server: --gguf {args.gguf}: no such file (or pass --url)", file=sys.stderr)
            return 2
        converted = sorted(MODELS.glob("smollm2-135m-q4_1-hf-*")) if args.gguf == str(GGUF) else []
        args.tokenizer = args.tokenizer or str(converted[0] if converted else args.gguf)
        args.model_name = args.model_name or ALIAS
        args.add_bos = (not args.server_bos) if args.add_bos is None else args.add_bos
    elif not args.tokenizer:
        ap.error("--tokenizer is required with --url")
    extra = ["--kv_overrides", "tokenizer.ggml.add_bos_token=bool:true"] if args.server_bos else []
    server = llama_cpp_server(Path(args.gguf), alias=ALIAS, threads=args.server_threads, extra=extra) if started \
        else nullcontext(args.url)
    try:
        with server as url:
            return run(args, url, started)
    except (AuditError, ServerStartError) as exc:
        print(f"bench_server: {exc}", file=sys.stderr)
        return 2


def run(args, url: str, started: bool) -> int:
    from audit.backends.openai_completions import OpenAICompletionsBackend

    backend = OpenAICompletionsBackend.from_spec(
        f"openai-completions:{url}", model_name=args.model_name, tokenizer=args.tokenizer,
        api_key_env=args.api_key_env, concurrency=args.concurrency, timeout=args.timeout,
        add_bos=bool(args.add_bos), batch_size=args.batch_size,
    )
    backend.check()
    requests, n_items = build_requests(args.format, args.items, args.shots, "")
    ident = backend.identity()
    where = f"llama-cpp-python {_version('llama_cpp_python')} started here on {Path(args.gguf).name}, " \
            f"{args.server_threads} threads, server adds BOS: {backend.server_bos}" if started else url
    print(f"server   {where}; model={ident['model']}; prompts as {ident['prompt_as']}; request fields "
          f"{ident['request'] or '-'}")
    print(f"requests {len(requests)} ({n_items} items, format {args.format}, {args.shots} shots)")
    print(f"ours     openai-completions: {backend.batch_size} prompt(s) per request, {backend.concurrency} in flight "
          f"({backend.tuning['concurrency_from']}; rates in flight {backend.tuning['rates_in_flight'] or '-'})")

    start = time.perf_counter()
    served = backend.loglikelihood(requests)
    ours_s = time.perf_counter() - start
    print(f"ours     {ours_s:8.2f} s  {len(requests) / ours_s:8.2f} req/s  "
          f"({backend.stats['http_requests']} HTTP requests incl. the probe, {backend.stats['retries']} retries)")
    agree = True
    if not args.skip_lm_eval:
        peer_c = args.peer_concurrency or backend.concurrency
        bos = backend.tokenizer.decode([backend.bos_id]) if args.add_bos else ""
        peer_requests = [Request(bos + r.prefix, r.query, r.continuation) for r in requests]
        theirs, settings, peer_s = lm_eval_loglikelihood(url, backend.model_name, args.tokenizer, peer_requests,
                                                         concurrency=peer_c, timeout=args.timeout)
        shown = ", ".join(f"{k}={v}" for k, v in settings.items() if k not in ("base_url", "tokenizer"))
        print(f"lm-eval  local-completions ({_version('lm_eval')}): {shown}"
              f"{'; BOS as text in front of each context' if bos else ''}")
        print(f"lm-eval  {peer_s:8.2f} s  {len(requests) / peer_s:8.2f} req/s")
        print(f"ratio    ours / lm-eval throughput = {peer_s / ours_s:.2f}")
        agree = compare("lm-eval", served, theirs, args.tolerance)
    if args.hf_model and not args.skip_hf:
        agree = hf_side(args, backend, requests, served, ours_s) and agree
    return 0 if agree else 1


def hf_side(args, backend, requests, served, ours_s) -> bool:
    from audit.backends.hf.scorer import Scorer

    lm = load_hf(args.hf_model, args.device, args.dtype)
    scorer = Scorer(lm, batch_size=args.hf_batch_size, progress=False)
    bos = backend.tokenizer.decode([backend.bos_id]) if args.add_bos else ""
    hf_requests = [Request(bos + r.prefix, r.query, r.continuation) for r in requests]
    scorer.loglikelihood(hf_requests[:4])  # warm-up
    start = time.perf_counter()
    local = scorer.loglikelihood(hf_requests)
    hf_s = time.perf_counter() - start
    print(f"hf       {hf_s:8.2f} s  {len(requests) / hf_s:8.2f} req/s  (device {lm.device})")
    print(f"ratio    ours (server) / hf throughput = {hf_s / ours_s:.2f}")
    compare("hf (quantised server vs dequantised weights: not expected within the tolerance)"
            if args.hf_model.endswith(".gguf") else "hf", served, local, args.tolerance)
    return True  # the HF side is a different kernel: reported, never a failure


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    raise SystemExit(main())
