"""Scoring throughput: our engine (audit.backends.hf.scorer.Scorer) against lm-evaluation-harness (HFLM.loglikelihood).

Both score the same WinoBias-style cloze requests (zero_shot prompts with k = 0, 4, 16 shots; two
candidates per item, each candidate one request, as lm-eval counts them) on the same model, built
offline with random weights (timing does not depend on the weights) and a byte-level BPE trained
on the prompts. Both get the same batch size and torch threads.

    python benchmarks/bench_scoring.py                      # GPT-2-small shape (124M), CPU, 2 threads
    python benchmarks/bench_scoring.py --device cuda --preset 7b   # Llama-7B shape, bf16: tokens/s, MFU

lm-eval at many shots is slow on a CPU; ``--lm-eval-requests`` caps the requests it scores per
shot count (rates are per request; the table says how many it scored).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's audit package

import torch  # noqa: E402

from audit.datasets.winobias.generated import generate_items  # noqa: E402
from audit.backends.hf.loading import LoadedModel  # noqa: E402
from audit.prompts.render import continuation, render_prompt  # noqa: E402
from audit.backends.base import Request  # noqa: E402
from audit.backends.hf.scorer import Scorer  # noqa: E402

PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0}


def build_tokenizer(vocab_size: int = 8000):
    """A byte-level BPE trained on the generated benchmark's prompts (every word ends up one token or two)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    items = generate_items(0)
    texts = [render_prompt("zero_shot", it, items[:4]).text + " " + " ".join(it.candidates) for it in items]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )


def build_model(preset: str, tokenizer, device: str, layers: int | None = None):
    """Random weights shaped as GPT-2 small (float32) or Llama 7B (bf16); ``layers`` shrinks it (smoke tests)."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    eos = tokenizer.eos_token_id
    torch.manual_seed(0)
    if preset == "gpt2-small":
        config = GPT2Config(bos_token_id=eos, eos_token_id=eos, n_layer=layers or 12)  # 768 wide, 50257 vocab
        dtype, cls = torch.float32, GPT2LMHeadModel
    else:
        config = LlamaConfig(
            vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=layers or 32,
            num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096,
            bos_token_id=eos, eos_token_id=eos, pad_token_id=tokenizer.pad_token_id,
        )
        dtype, cls = torch.bfloat16, LlamaForCausalLM
    config._attn_implementation = "sdpa"
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = cls(config).eval()
    finally:
        torch.set_default_dtype(previous)
    return model


def build_requests(n_items: int, shots: int) -> list[Request]:
    """``n_items`` test-split items (spread over types and genders), two candidates each; shots from dev."""
    items = generate_items(0)
    test = [it for it in items if it.split == "test"]
    step = max(1, len(test) // n_items)
    chosen = (test[::step] + test)[:n_items]
    pool = [it for it in items if it.split == "dev"][:: 7][:shots]
    reqs = []
    for it in chosen:
        p = render_prompt("zero_shot", it, pool)
        reqs += [Request(p.prefix, p.query, continuation(c)) for c in it.candidates]
    return reqs


def time_ours(lm: LoadedModel, reqs: list[Request], batch_size) -> tuple[float, list[float], Scorer, float]:
    """Wall seconds, scores, the scorer (its stats) and process CPU seconds (all threads) of one run."""
    scorer = Scorer(lm, batch_size=batch_size, progress=False)
    cpu, start = time.process_time(), time.perf_counter()
    scores = scorer.loglikelihood(reqs)
    _sync()
    return time.perf_counter() - start, scores, scorer, time.process_time() - cpu


def time_lm_eval(hflm, reqs: list[Request]) -> tuple[float, list[float]]:
    from lm_eval.api.instance import Instance

    instances = [Instance("loglikelihood", {}, (r.context, r.continuation), i) for i, r in enumerate(reqs)]
    start = time.perf_counter()
    out = hflm.loglikelihood(instances, disable_tqdm=True)
    _sync()
    return time.perf_counter() - start, [ll for ll, _ in out]


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _peak_tflops(override: float | None) -> float | None:
    if override:
        return override
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=["gpt2-small", "7b"], default="gpt2-small")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--items", type=int, default=None, help="items (2 requests each); default 100, 7b: 640")
    ap.add_argument("--shots", default="0,4,16")
    ap.add_argument("--batch-size", default=None, help="contexts per forward (ours), requests (lm-eval); default 32 on CPU, auto on GPU")
    ap.add_argument("--lm-eval-requests", default=None, help="cap per shot count (default on CPU: 200,60,20)")
    ap.add_argument("--no-lm-eval", action="store_true")
    ap.add_argument("--peak-tflops", type=float, default=None, help="accelerator peak (bf16 dense) for MFU")
    ap.add_argument("--repeats", type=int, default=2, help="rounds of timed runs of both engines (best kept)")
    ap.add_argument("--ours-extra", type=int, default=2, help="more rounds of ours alone (steadies ours(k)/ours(0))")
    ap.add_argument("--layers", type=int, default=None, help="fewer layers than the preset (smoke tests only)")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    shots = [int(s) for s in args.shots.split(",")]
    cuda = args.device.startswith("cuda")
    n_items = args.items or (640 if args.preset == "7b" else 100)
    batch_size = args.batch_size or ("auto" if cuda else "32")
    batch_size = batch_size if batch_size == "auto" else int(batch_size)
    caps = [int(c) for c in args.lm_eval_requests.split(",")] if args.lm_eval_requests else (
        [2 * n_items] * len(shots) if cuda else [200, 60, 20][: len(shots)] + [20] * max(0, len(shots) - 3)
    )
    run_lm_eval = not args.no_lm_eval and (args.preset == "gpt2-small" or args.lm_eval_requests is not None)

    report_flops = cuda or args.preset == "7b"
    tokenizer = build_tokenizer()
    model = build_model(args.preset, tokenizer, args.device, args.layers)
    lm = LoadedModel(args.preset, model, tokenizer, torch.device(args.device))
    n_params = sum(p.numel() for p in model.parameters())
    n_body = sum(p.numel() for p in model.base_model.parameters()) - model.get_input_embeddings().weight.numel()
    print(
        f"scoring benchmark: {args.preset}-shaped model ({n_params / 1e6:.1f}M params, random weights, "
        f"{str(model.dtype).replace('torch.', '')}, {model.config._attn_implementation}), device {args.device}, "
        f"torch threads {torch.get_num_threads()}, tokenizer: byte-level BPE ({len(tokenizer)} tokens)"
    )
    print(f"requests: {n_items} generated items x 2 candidates = {2 * n_items} per shot count (zero_shot format); "
          f"batch size {batch_size} (ours: contexts, lm-eval: requests); "
          f"best of {args.repeats + args.ours_extra} runs (ours), "
          f"{args.repeats} (lm-eval), round robin")

    hflm = None
    if run_lm_eval:
        import logging

        from lm_eval.models.huggingface import HFLM

        logging.getLogger("lm_eval").setLevel(logging.ERROR)
        hflm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size if batch_size != "auto" else "auto")
    # warm-up (first-call allocations, kernel selection), not timed
    warm = build_requests(2, 0)
    time_ours(lm, warm, batch_size)  # noqa: the result is thrown away
    if hflm is not None:
        time_lm_eval(hflm, warm)

    # Round robin over shot counts and engines, so that slow spells of a shared machine hit all
    # cells alike; final rounds of ours alone (cheap) steady ours(16 shots)/ours(0 shots).
    requests = {k: build_requests(n_items, k) for k in shots}
    subsets = {k: requests[k][: min(cap, len(requests[k]))] for k, cap in zip(shots, caps)}
    t_ours = {k: float("inf") for k in shots}
    t_theirs, cpu_ours = dict(t_ours), dict(t_ours)
    results: dict[int, tuple] = {}
    for rnd in range(args.repeats + args.ours_extra):
        for k in shots:
            t, scores, scorer, cpu = time_ours(lm, requests[k], batch_size)
            t_ours[k], cpu_ours[k] = min(t_ours[k], t), min(cpu_ours[k], cpu)
            results.setdefault(k, (scores, scorer))
            if hflm is not None and rnd < args.repeats:
                t, theirs = time_lm_eval(hflm, subsets[k])
                t_theirs[k] = min(t_theirs[k], t)
                results[k] = (results[k][0], results[k][1], theirs)
            print(f"  round {rnd + 1}: {k} shots", file=sys.stderr, flush=True)

    rows, ours_time = [], t_ours
    for k in shots:
        reqs, scores, scorer = requests[k], results[k][0], results[k][1]
        row = {"shots": k, "ctx": len(tokenizer(reqs[0].context)["input_ids"]), "ours": len(reqs) / t_ours[k],
               "stats": scorer.stats}
        if hflm is not None:
            theirs = results[k][2]
            row.update(theirs=len(subsets[k]) / t_theirs[k], n_theirs=len(subsets[k]),
                       diff=max(abs(a - b) for a, b in zip(scores, theirs)))
        if report_flops:
            flops = 2.0 * n_body * scorer.stats.tokens  # weight matmuls of the tokens run (2N; no attention)
            naive = sum(len(tokenizer(r.context + r.continuation)["input_ids"]) - 1 for r in reqs)
            row.update(tok_s=scorer.stats.tokens / t_ours[k], naive_tok_s=naive / t_ours[k],
                       tflops=flops / t_ours[k] / 1e12)
        rows.append(row)

    print()
    head = (f"{'shots':>5} | {'context tok':>11} | {'ours req/s':>10} | {'lm-eval req/s':>13} | {'lm-eval n':>9} | "
            f"{'ours/lm-eval':>12} | {'max |diff|':>10}")
    print(head)
    print("-" * len(head))
    for r in rows:
        theirs = f"{r['theirs']:13.2f}" if "theirs" in r else f"{'-':>13}"
        n = f"{r['n_theirs']:9d}" if "n_theirs" in r else f"{'-':>9}"
        ratio = f"{r['ours'] / r['theirs']:12.1f}" if "theirs" in r else f"{'-':>12}"
        diff = f"{r['diff']:10.1e}" if "diff" in r else f"{'-':>10}"
        print(f"{r['shots']:5d} | {r['ctx']:11d} | {r['ours']:10.2f} | {theirs} | {n} | {ratio} | {diff}")
    if 0 in ours_time and max(shots) > 0:
        k = max(shots)
        print(f"\nours: time at {k} shots / time at 0 shots = {ours_time[k] / ours_time[0]:.2f}"
              f" (process CPU time: {cpu_ours[k]:.1f} s / {cpu_ours[0]:.1f} s = {cpu_ours[k] / cpu_ours[0]:.2f})")
    capped = [r for r in rows if "n_theirs" in r and r["n_theirs"] < 2 * n_items]
    if capped:
        print("lm-eval scored the first " + ", ".join(f"{r['n_theirs']} ({r['shots']} shots)" for r in capped)
              + f" of the {2 * n_items} requests (rates are per request)")
    for r in rows:
        s = r["stats"]
        print(f"ours, {r['shots']} shots: {s.forward_passes} forward passes, {s.tokens} tokens run, "
              f"{s.prefix_reuse} requests on a cached prefix, {s.fallbacks} fallbacks")
    if report_flops:
        peak = _peak_tflops(args.peak_tflops)
        print()
        for r in rows:
            mfu = f", MFU {100 * r['tflops'] / peak:.1f}% of {peak:.0f} TFLOPS" if peak else ""
            print(f"ours, {r['shots']} shots: {r['tok_s']:.0f} tokens/s run ({r['naive_tok_s']:.0f} tokens/s of "
                  f"lm-eval-equivalent work), {r['tflops']:.1f} TFLOPS{mfu}")


if __name__ == "__main__":
    main()
