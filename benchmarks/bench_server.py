"""Audit the same prompts through the HF scorer and through an OpenAI-compatible server; print how
well they agree and how fast each is.

Both score the same WinoBias-style cloze requests (the generated benchmark, a prompt format, k
shots; one request per candidate). The server path is the ``openai-completions`` backend with
its start-up alignment probe (excluded from the timing); the HF path is ``audit.backends.hf.scorer.Scorer``
on the same weights. Agreement: the share of items whose chosen candidate is the same, and the
mean / max |difference| of the log-likelihoods (nats). Throughput: requests per second, and the
server's rate as a ratio to the HF scorer's in the same run.

    # a vLLM server on a GPU machine, the same checkpoint loaded locally for the HF side
    vllm serve /models/Llama-3.1-8B --no-enable-prefix-caching &
    python benchmarks/bench_server.py --url http://127.0.0.1:8000/v1 --tokenizer /models/Llama-3.1-8B \\
        --hf-model /models/Llama-3.1-8B --device cuda --dtype bfloat16 --items 640 --shots 4

    # llama-cpp-python on a GGUF file (it scores one position off without BOS: --add-bos)
    python -m llama_cpp.server --model smollm2.gguf --port 8000 &
    python benchmarks/bench_server.py --url http://127.0.0.1:8000/v1 --tokenizer smollm2.gguf \\
        --hf-model smollm2.gguf --add-bos --items 100

``--skip-hf`` measures the server alone (a 70B model that does not fit locally).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's audit package

from audit.datasets.winobias.generated import generate_items  # noqa: E402
from audit.prompts.render import continuation, render_prompt  # noqa: E402
from audit.backends.base import Request  # noqa: E402


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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="server base URL, e.g. http://127.0.0.1:8000/v1")
    ap.add_argument("--model-name", help="served model name (default: the first one /v1/models lists)")
    ap.add_argument("--tokenizer", required=True, help="tokenizer directory, hub id or .gguf file")
    ap.add_argument("--hf-model", help="the same weights for the HF scorer (directory, hub id or .gguf)")
    ap.add_argument("--skip-hf", action="store_true", help="time the server only")
    ap.add_argument("--format", default="zero_shot", help="prompt format (templates/prompts)")
    ap.add_argument("--items", type=int, default=200)
    ap.add_argument("--shots", type=int, default=0)
    ap.add_argument("--add-bos", action="store_true", help="prepend BOS (llama-cpp-python needs it)")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=16, help="prompts per HTTP request where the server allows")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--api-key-env", help="environment variable holding the API key")
    ap.add_argument("--device")
    ap.add_argument("--dtype")
    ap.add_argument("--hf-batch-size", default="auto")
    args = ap.parse_args(argv)
    if not args.skip_hf and not args.hf_model:
        ap.error("--hf-model is required unless --skip-hf")

    from audit.errors import AuditError
    from audit.backends.hf.scorer import Scorer
    from audit.backends.openai_completions import OpenAICompletionsBackend

    try:
        server = OpenAICompletionsBackend.from_spec(
            f"openai-completions:{args.url}", model_name=args.model_name, tokenizer=args.tokenizer,
            api_key_env=args.api_key_env, concurrency=args.concurrency, timeout=args.timeout,
            add_bos=args.add_bos, batch_size=args.batch_size,
        )
        server.check()
        bos = server.tokenizer.decode([server.bos_id]) if args.add_bos else ""
        requests, n_items = build_requests(args.format, args.items, args.shots, "")
        start = time.perf_counter()
        served = server.loglikelihood(requests)
        server_s = time.perf_counter() - start
    except AuditError as exc:
        print(f"bench_server: {exc}", file=sys.stderr)
        return 2
    ident = server.identity()
    print(f"server   {ident['server']}  model={ident['model']}  version={ident['server_version']}  "
          f"prompts as {ident['prompt_as']}, {server.batch_size} per request, concurrency {server.concurrency}")
    print(f"requests {len(requests)} ({n_items} items, format {args.format}, {args.shots} shots)")
    print(f"server   {server_s:8.2f} s  {len(requests) / server_s:9.1f} req/s  "
          f"({server.stats['http_requests']} HTTP requests, {server.stats['retries']} retries)")
    if args.skip_hf:
        return 0

    lm = load_hf(args.hf_model, args.device, args.dtype)
    scorer = Scorer(lm, batch_size=args.hf_batch_size, progress=False)
    hf_requests, _ = build_requests(args.format, args.items, args.shots, bos)
    scorer.loglikelihood(hf_requests[:4])  # warm-up
    start = time.perf_counter()
    local = scorer.loglikelihood(hf_requests)
    hf_s = time.perf_counter() - start
    print(f"hf       {hf_s:8.2f} s  {len(requests) / hf_s:9.1f} req/s  (device {lm.device})")
    print(f"ratio    server / hf throughput = {hf_s / server_s:.2f}")

    diffs = [abs(a - b) for a, b in zip(served, local)]
    same = [(a0 > a1) == (b0 > b1) for a0, a1, b0, b1 in zip(served[::2], served[1::2], local[::2], local[1::2])]
    print(f"agree    choice {sum(same)}/{len(same)} = {sum(same) / len(same):.3f}; |diff| mean "
          f"{statistics.mean(diffs):.4f} nats, max {max(diffs):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
