"""BBQ with the reference model: what the two BBQ speed-ups buy, as ratios in one run on the same requests.

1. Tokenising: every text encoded whole (lm-eval's way, and ours before) against the shared prefix's head
   encoded once (``audit.backends.hf.prefix_split``); the tokens must be equal.
2. Scoring: torch's default intra-op threads against one thread (``audit.datasets.winobias.reference_model.threads``);
   the scores must be equal.

    python benchmarks/bench_bbq.py --items 300                    # paper-b's few_shot_k8, one seed, answer order 0
    python benchmarks/bench_bbq.py --items 300 --condition zero_shot --rounds 3

CPU seconds of this process (all threads) and wall seconds; the machine may be shared, so the rounds
alternate the two ways and the best of each is printed beside the median.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _whole(tokenizer, requests):
    """lm-eval's tokenisation with every distinct text encoded whole (the engine before the split)."""
    from audit.backends.hf.tokenization import _encode_many, _split_spaces

    pairs = [_split_spaces(r.context, r.continuation) for r in requests]
    texts = sorted({t for c, k in pairs for t in (c, c + k)})
    ids = dict(zip(texts, _encode_many(tokenizer, texts)))
    return [(ids[c], ids[c + k][len(ids[c]):]) for c, k in pairs]


def _report(label: str, base: list, new: list) -> None:
    def fmt(runs, i):
        return f"{min(r[i] for r in runs):6.2f} (median {statistics.median(r[i] for r in runs):6.2f})"

    cpu_ratio = statistics.median(b[1] for b in base) / max(statistics.median(n[1] for n in new), 1e-9)
    wall_ratio = statistics.median(b[0] for b in base) / max(statistics.median(n[0] for n in new), 1e-9)
    print(f"{label}\n  before: wall {fmt(base, 0)} s, CPU {fmt(base, 1)} s\n  after:  wall {fmt(new, 0)} s, "
          f"CPU {fmt(new, 1)} s\n  ratio (median before / after): CPU {cpu_ratio:.1f}x, wall {wall_ratio:.1f}x", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--condition", default="few_shot_k8")
    parser.add_argument("--preset", default="paper-b")
    parser.add_argument("--model", default="reference-biased")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import torch

    from shared_data import bbq_dir
    from audit.backends.hf.scorer import Scorer
    from audit.backends.hf.tokenization import tokenize_requests
    from audit.cli.options import AuditOptions
    from audit.run.conditions import build_prompts, likelihood_requests
    from audit.run.setup import build_session

    folder = bbq_dir()
    if folder is None:
        raise SystemExit("bench_bbq: official BBQ files not found (../shared/bbq or $BIAS_AUDIT_BBQ_DIR)")
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bias-audit.toml"
        config.write_text(f'preset = "{args.preset}"\nmin_items = 4\n', encoding="utf-8")
        session = build_session(AuditOptions(model=[args.model], config=str(config), data=f"bbq:{folder / 'data'}"),
                                root=Path(tmp))
    backend = session.backend(args.model)
    while hasattr(backend, "inner"):
        backend = backend.inner
    cond = session.config.conditions[args.condition]
    step = max(1, len(session.items) // args.items)
    items = session.items[::step][: args.items]
    prompts = build_prompts(session.dataset, cond, items, session.pool, cond.seeds[0], backend, args.condition, 0)
    requests = likelihood_requests(session.dataset, prompts, items)
    tokenizer = backend.tokenizer
    print(f"bench_bbq: {args.preset} / {args.condition}, {args.model}, {len(items)} official BBQ items, "
          f"{len(requests)} requests, shared prefix {len(requests[0].prefix):,} chars; torch threads "
          f"{torch.get_num_threads()}; {args.rounds} rounds", flush=True)

    base, new = [], []
    for _ in range(args.rounds):
        whole, *t_base = _timed(lambda: _whole(tokenizer, requests))
        split, *t_new = _timed(lambda: tokenize_requests(tokenizer, requests))
        if whole != split:
            raise SystemExit("bench_bbq: the split tokenisation differs from whole encoding")
        base.append(t_base)
        new.append(t_new)
    _report("tokenising (tokens equal)", base, new)

    default, one = Scorer(backend.loaded), backend.scorer
    default.loglikelihood(requests[:30])
    one.loglikelihood(requests[:30])
    base, new = [], []
    for _ in range(args.rounds):
        a, *t_base = _timed(lambda: default.loglikelihood(requests))
        b, *t_new = _timed(lambda: one.loglikelihood(requests))
        if a != b:
            raise SystemExit("bench_bbq: one-thread scores differ from the default's")
        base.append(t_base)
        new.append(t_new)
    _report(f"scoring, tokenising included ({type(one).__name__} on 1 thread vs Scorer on "
            f"{torch.get_num_threads()}; scores equal)", base, new)


if __name__ == "__main__":
    main()
