"""Requests per second through an OpenAI-compatible completions server: our ``openai-completions``
backend against lm-evaluation-harness's ``local-completions`` on the same server and requests, the
log-likelihoods compared; optionally the HF scorer on the same weights too.

Both score the same WinoBias-style cloze requests (the generated benchmark, a prompt format, k
shots; one request per candidate). Ours runs as an audit runs it: its start-up probe (alignment,
prompt form, requests in flight chosen from the server's answers: ``tune()``) is excluded from the
timing. lm-eval runs as a user runs it against this server: ``tokenized_requests=False``
(llama-cpp-python refuses token-id prompts), ``batch_size=1`` (it takes one prompt per request),
once with ``num_concurrent=1`` (lm-eval's default) and once with ours (``--peer-concurrency``
overrides); the settings are printed. Throughput: requests per second (wall clock) for each, the
started server's CPU-seconds per request (steadier than wall time on a shared machine), and ours as
a ratio to lm-eval's. Agreement: max |difference| of the log-likelihoods (nats); the
``--tolerance`` (1e-4) decides, ``--forced-tolerance`` (0.2) for ours scored by forcing.

Servers: ``--server llama-cpp-python llama-server`` starts each in turn on the same GGUF; the
table compares every row with lm-eval on the first. llama.cpp's C++ ``llama-server`` (parallel
slots, prompt cache) refuses ``echo``, so lm-eval's local-completions cannot score on it; ours
scores by forcing the continuation (``--score-by forced``: a token-id grammar, see
``audit/backends/openai_forced.py``) on both; ``--score-by forced auto`` adds a row of ours as a user gets
it by default (``auto``: echo where the server echoes, exact; forced where it cannot, as on llama-server).

BOS: llama-cpp-python's echoed log-probabilities are right only after a BOS, which its echo drops.
The server started here puts BOS in front itself (``--kv_overrides
tokenizer.ggml.add_bos_token=bool:true``, what most GGUF models declare; SmolLM2's does not), so
both clients send plain text and both are right. ``--no-server-bos`` starts it as the GGUF
declares: ours then sends BOS itself (``--add-bos``), and lm-eval, which counts the BOS it is given
as a context token, sums the wrong positions (shown).

    # start llama-cpp-python's server, then llama-server, on the SmolLM2-135M-Instruct GGUF (the test model)
    # (about 3 minutes on 2 shared CPU cores: each echoed prompt costs llama-cpp-python ~2 CPU-s)
    python benchmarks/bench_server.py --server llama-cpp-python llama-server --items 5 --score-by forced auto

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

os.environ.setdefault("TQDM_DISABLE", "1")  # lm-eval's progress bars between our lines (read when tqdm is imported)
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


def lm_eval_model(url: str, model: str, tokenizer: str, *, concurrency: int, timeout: float):
    """lm-eval's ``local-completions`` as a user points it at this server, and the settings it runs with."""
    from lm_eval.models.openai_completions import LocalCompletionsAPI

    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    settings = {"base_url": url + "/completions", "model": model, "tokenizer": tokenizer,
                "tokenizer_backend": "huggingface", "tokenized_requests": False, "batch_size": 1,
                "num_concurrent": concurrency, "max_retries": 3, "timeout": int(timeout)}
    return LocalCompletionsAPI(**settings), settings


def lm_eval_loglikelihood(lm, requests: list[Request]) -> list[float]:
    from lm_eval.api.instance import Instance

    instances = [Instance(request_type="loglikelihood", doc={}, arguments=(r.context, r.continuation), idx=i)
                 for i, r in enumerate(requests)]
    return [ll for ll, _greedy in lm.loglikelihood(instances, disable_tqdm=True)]


def compare(name: str, ours: list[float], theirs: list[float], tolerance: float, base: str = "lm-eval") -> bool:
    diffs = [abs(a - b) for a, b in zip(ours, theirs)]
    same = [(a0 > a1) == (b0 > b1) for a0, a1, b0, b1 in zip(ours[::2], ours[1::2], theirs[::2], theirs[1::2])]
    worst = max(range(len(diffs)), key=diffs.__getitem__)
    ok = max(diffs) <= tolerance
    print(f"agree    {name} vs {base}: choice {sum(same)}/{len(same)}; |diff| mean {statistics.mean(diffs):.2e}, "
          f"max {max(diffs):.2e} nats (request {worst}: {ours[worst]:.5f} vs {theirs[worst]:.5f}) -> "
          f"{'SAME' if ok else 'DIFFERENT'} within {tolerance:g}")
    return ok


SERVERS = ("llama-cpp-python", "llama-server")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="a running server's base URL, e.g. http://127.0.0.1:8000/v1 (default: start "
                                  "the --server(s) on --gguf)")
    ap.add_argument("--server", nargs="+", choices=SERVERS, default=["llama-cpp-python"],
                    help="which llama.cpp server(s) to start, one after the other (llama-server: llama.cpp's C++ "
                         "server, from $BIAS_AUDIT_LLAMA_SERVER or the cache folder .ci/run builds it into)")
    ap.add_argument("--gguf", default=str(GGUF), help="GGUF file for the server this script starts")
    ap.add_argument("--server-threads", type=int, default=1, help="threads of the started server")
    ap.add_argument("--slots", type=int, default=4, help="llama-server's parallel sequences (-np)")
    ap.add_argument("--server-bos", action=argparse.BooleanOptionalAction, default=True,
                    help="the started server puts BOS in front of each prompt (default: yes)")
    ap.add_argument("--model-name", help="served model name (default: the first one /v1/models lists)")
    ap.add_argument("--tokenizer", help="tokenizer directory, hub id or .gguf file (default with --gguf: the "
                                        "converted test-model directory, else the GGUF file)")
    ap.add_argument("--hf-model", help="the same weights for the HF scorer (directory, hub id or .gguf)")
    ap.add_argument("--skip-hf", action="store_true", help="no HF scorer (the default unless --hf-model)")
    ap.add_argument("--skip-lm-eval", action="store_true", help="no lm-eval local-completions")
    ap.add_argument("--format", default="zero_shot", help="prompt format (templates/prompts)")
    ap.add_argument("--items", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1, help="ours and lm-eval alternately, this many times")
    ap.add_argument("--shots", type=int, default=0)
    ap.add_argument("--add-bos", action=argparse.BooleanOptionalAction, default=None,
                    help="we send BOS in front of each prompt (default: where the started server does not)")
    ap.add_argument("--score-by", nargs="+", choices=("auto", "forced", "echo"), default=["forced", "auto"],
                    help="ours: score by forcing the continuation (grammar), by echo, or auto (echo where the "
                         "server echoes, else forced), one row each (default: forced auto)")
    ap.add_argument("--concurrency", type=int, help="ours: requests in flight (default: chosen by the probe)")
    ap.add_argument("--peer-concurrency", type=int, nargs="+",
                    help="lm-eval's num_concurrent, one run each (default: 1, its own default, and ours)")
    ap.add_argument("--batch-size", type=int, default=16, help="prompts per HTTP request where the server allows")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--tolerance", type=float, default=1e-4, help="nats: the largest difference counted as the same")
    ap.add_argument("--forced-tolerance", type=float, default=0.2,
                    help="nats, for rows scored by forcing (llama.cpp's one-token kernels against the batched ones "
                         "lm-eval's echo gets: 0.13 measured on the test model)")
    ap.add_argument("--api-key-env", help="environment variable holding the API key")
    ap.add_argument("--device")
    ap.add_argument("--dtype")
    ap.add_argument("--hf-batch-size", default="auto")
    args = ap.parse_args(argv)

    from audit.errors import AuditError
    from llama_cpp_server import ServerStartError, llama_cpp_server, llama_server, llama_server_binary

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
    binary = llama_server_binary()
    if started and "llama-server" in args.server and binary is None:
        print("bench_server: --server llama-server: no llama-server binary (set BIAS_AUDIT_LLAMA_SERVER or run .ci/run)",
              file=sys.stderr)
        return 2

    def server(kind: str):
        if not started:
            return nullcontext(args.url)
        bos = "tokenizer.ggml.add_bos_token=bool:true"
        if kind == "llama-server":
            return llama_server(binary, Path(args.gguf), alias=ALIAS, threads=args.server_threads, slots=args.slots,
                                extra=["--override-kv", bos] if args.server_bos else [])
        return llama_cpp_server(Path(args.gguf), alias=ALIAS, threads=args.server_threads,
                                extra=["--kv_overrides", bos] if args.server_bos else [])

    requests, n_items = build_requests(args.format, args.items, args.shots, "")
    print(f"requests {len(requests)} ({n_items} items, format {args.format}, {args.shots} shots), {args.rounds} round(s)")
    totals: dict[str, list[float]] = {}
    scores: dict[str, list[float]] = {}
    try:
        for kind in (args.server if started else ["given"]):
            with server(kind) as handle:
                run(args, kind, handle, requests, totals, scores)
    except (AuditError, ServerStartError) as exc:
        print(f"bench_server: {exc}", file=sys.stderr)
        return 2
    return 0 if summary(args, requests, totals, scores) else 1


def run(args, kind: str, server, requests, totals: dict, scores: dict) -> None:
    """Ours (each --score-by), then lm-eval (each --peer-concurrency), ``--rounds`` times, on one server."""
    from audit.backends.openai_completions import OpenAICompletionsBackend

    url, cpu = (server, None) if isinstance(server, str) else (server.url, server.cpu_seconds)
    ours = {}
    for mode in args.score_by:
        backend = OpenAICompletionsBackend.from_spec(
            f"openai-completions:{url}", model_name=args.model_name, tokenizer=args.tokenizer,
            api_key_env=args.api_key_env, concurrency=args.concurrency, timeout=args.timeout,
            add_bos=bool(args.add_bos) or (kind == "llama-server" and args.server_bos), batch_size=args.batch_size,
            score_by=mode,
        )
        try:
            backend.tune()
        except Exception as exc:  # noqa: BLE001 - e.g. echo on llama-server: shown, the other modes still run
            print(f"ours     score_by={mode} on {kind}: {exc}")
            continue
        ours[f"ours ({backend.identity()['scored_by']}) on {kind}"] = backend
    if not ours:
        return
    first = next(iter(ours.values()))
    version = _version("llama_cpp_python") if kind == "llama-cpp-python" else "(llama.cpp of llama-cpp-python 0.3.36)"
    where = f"{kind} {version} started here on {Path(args.gguf).name}, {args.server_threads} thread(s)" \
            f"{f', {args.slots} slots' if kind == 'llama-server' else ''}, server adds BOS: {first.server_bos}" \
        if cpu else url
    print(f"\nserver   {where}; model={first.model_name}; prompts as {'token ids' if first.token_ids else 'text'}")
    for name, backend in ours.items():
        t = backend.tuning
        why_not = "" if backend.forced else f" (forced refused: {t['forced_refused']})"
        print(f"{name}: request fields {backend.extra_body or '-'}{why_not}"
              f"; "
              f"{1 if backend.forced else backend.batch_size} prompt(s) per request, {backend.concurrency} in flight "
              f"({t['concurrency_from']}; rates in flight {t['rates_in_flight'] or '-'})")
    bos = first.tokenizer.decode([first.bos_id]) if args.add_bos else ""
    peer_requests = [Request(bos + r.prefix, r.query, r.continuation) for r in requests]
    peers = [] if args.skip_lm_eval else list(args.peer_concurrency or sorted({1, first.concurrency}))

    def timed(work):
        cpu0, start = cpu() if cpu else 0.0, time.perf_counter()
        out = work()
        return out, time.perf_counter() - start, (cpu() - cpu0) if cpu else float("nan")

    def add(name, wall, server_cpu):
        old = totals.setdefault(name, [0.0, 0.0])
        totals[name] = [old[0] + wall, old[1] + server_cpu]
        print(f"round {round_no}  {name:<40} {wall:8.2f} s wall  {len(requests) / wall:7.3f} req/s  "
              f"server {server_cpu:7.2f} CPU-s")

    refused = set()
    for round_no in range(1, args.rounds + 1):  # alternating, so that a change in the machine's load hits all
        for name, backend in ours.items():
            served, wall, server_cpu = timed(lambda: backend.loglikelihood(requests))
            add(name, wall, server_cpu)
            scores.setdefault(name, served)
        for peer_c in peers:
            if peer_c in refused:
                continue
            lm, settings = lm_eval_model(url, first.model_name, args.tokenizer, concurrency=peer_c, timeout=args.timeout)
            name = f"lm-eval num_concurrent={peer_c} on {kind}"
            try:
                theirs, wall, server_cpu = timed(lambda: lm_eval_loglikelihood(lm, peer_requests))
            except Exception as exc:  # noqa: BLE001 - lm-eval against a server it cannot use: shown, not fatal
                refused.add(peer_c)
                first_line = (str(exc).strip().splitlines() or [""])[0][:200]
                print(f"round {round_no}  {name:<40} FAILED: {type(exc).__name__}: {first_line}")
                continue
            add(name, wall, server_cpu)
            scores.setdefault(name, theirs)
            if round_no == 1:
                shown = ", ".join(f"{k}={v}" for k, v in settings.items() if k not in ("base_url", "tokenizer"))
                print(f"         lm-eval {_version('lm_eval')} local-completions: {shown}"
                      f"{'; BOS as text in front of each context' if bos else ''}")
    if args.hf_model and not args.skip_hf:
        name = next(iter(ours))
        hf_side(args, ours[name], requests, scores[name], totals[name][0] / args.rounds)


def summary(args, requests, totals: dict, scores: dict) -> bool:
    """The table (throughput against the first lm-eval row, lm-eval's default num_concurrent=1 where run), and
    every client's log-likelihoods against that row's: True where those on the same server agree within
    ``--tolerance`` (``--forced-tolerance`` for rows scored by forcing)."""
    n = len(requests) * args.rounds
    base = next((k for k in totals if k.startswith("lm-eval num_concurrent=1 ")), next((k for k in totals if k.startswith("lm-eval")), None))
    print(f"\n| client | requests | wall s | req/s | server CPU-s / request | throughput / {base or '-'} | "
          "server CPU / this one's |")
    print("|---|---|---|---|---|---|---|")
    for name, (wall, server_cpu) in totals.items():
        speed = f"{totals[base][0] / wall:.2f}" if base else "-"
        cpu = f"{totals[base][1] / server_cpu:.2f}" if base and server_cpu == server_cpu and server_cpu > 0 else "-"
        print(f"| {name} | {n} | {wall:.1f} | {n / wall:.3f} | {server_cpu / n:.3f} | {speed} | {cpu} |")
    agree = True
    if base:
        for name, got in scores.items():
            if name != base:
                tolerance = args.forced_tolerance if "(forced)" in name else args.tolerance
                same_server = name.rsplit(" on ", 1)[-1] == base.rsplit(" on ", 1)[-1]
                ok = compare(name, got, scores[base], tolerance, base)
                if not same_server:  # another build, other kernels, batches mixed across slots: shown, not judged
                    print("         (another server: reported, not part of the exit status)")
                agree = (ok or not same_server) and agree
    return agree


def hf_side(args, backend, requests, served, ours_s) -> bool:
    from audit.backends.hf.scorer import Scorer

    lm = load_hf(args.hf_model, args.device, args.dtype)
    scorer = Scorer(lm, batch_size=args.hf_batch_size, progress=False)
    bos = backend.tokenizer.decode([backend.bos_id]) if args.add_bos or backend.server_bos else ""  # as the server scores
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
