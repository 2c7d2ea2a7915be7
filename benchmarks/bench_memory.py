"""Memory of the largest engine call of a preset: one condition's requests for one seed and answer order,
tokenised as the HF engine tokenises them (``tokenize_requests``) and grouped into rows (``_units``), with
the process's resident memory after each step; and the memory and time of everything after scoring
(``audit.run.plan_timing.measure_after_scoring``: gates, record, report on a full-size shadow run).

    python benchmarks/bench_memory.py --preset paper-b --condition few_shot_k8 --data bbq:/work/shared/bbq/data
    python benchmarks/bench_memory.py --preset paper-b --data bbq:/work/shared/bbq/data --after-scoring

``--whole-run``: one in-process ``bias-audit run`` of the preset (no result cache), its wall time, CPU
seconds and the process's peak RSS (its high-water mark, imports and model included: what ``/usr/bin/time -v``
reports), to compare presets on one model; ``benchmarks/bench_study.py`` prints the study's the same way.

    python benchmarks/bench_memory.py --whole-run --preset default --model hf:DIR --data /work/shared/winobias
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil  # noqa: E402


def whole_run(args) -> None:
    from audit.cli import main as cli_main

    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["run", "--preset", args.preset, "--model", args.model, "--data", args.data, "--no-cache", "--out", str(Path(tmp) / "out")]
        cmd += ["--max-items", str(args.max_items)] if args.max_items else []
        wall, cpu = time.perf_counter(), time.process_time()
        code = cli_main(cmd)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"whole run: preset {args.preset}, model {args.model}, max_items {args.max_items or 'all'} (exit {code}): "
          f"{wall:.0f} s wall, {cpu:.0f} CPU-s, peak RSS {peak:,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper-b")
    parser.add_argument("--condition", default="few_shot_k8")
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", default="reference-biased")
    parser.add_argument("--max-items", type=int)
    parser.add_argument("--after-scoring", action="store_true", help="time gates, record and report instead")
    parser.add_argument("--whole-run", action="store_true", help="peak RSS, wall and CPU of one whole run")
    args = parser.parse_args()
    if args.whole_run:
        whole_run(args)
        return
    from audit.cli.options import AuditOptions
    from audit.run.setup import build_session

    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bias-audit.toml"
        config.write_text(f'preset = "{args.preset}"\nmin_items = 4\n'
                          + (f"max_items = {args.max_items}\n" if args.max_items else ""), encoding="utf-8")
        session = build_session(AuditOptions(model=[args.model], config=str(config), data=args.data), root=Path(tmp))
    proc = psutil.Process()
    rss = lambda: f"{proc.memory_info().rss / 1e6:,.0f} MB"  # noqa: E731
    print(f"{len(session.items):,} items; RSS after loading the data {rss()}", flush=True)
    if args.after_scoring:
        from audit.run.plan_timing import measure_after_scoring

        took = measure_after_scoring(session)
        print(f"after scoring: {took.wall:.0f} s wall, {took.cpu:.0f} CPU-s; "
              f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:,.0f} MB")
        return
    from audit.backends.hf.planning import _units
    from audit.backends.hf.tokenization import tokenize_requests
    from audit.run.conditions import build_prompts, likelihood_requests

    backend = session.backend(args.model)
    print(f"RSS after loading the model {rss()}", flush=True)
    cond = session.config.conditions[args.condition]
    prompts = build_prompts(session.dataset, cond, session.items, session.pool, cond.seeds[0], backend, args.condition, 0)
    requests = likelihood_requests(session.dataset, prompts, session.items)
    print(f"{len(requests):,} requests, shared prefix {len(requests[0].prefix):,} chars; RSS {rss()}", flush=True)
    start, cpu = time.perf_counter(), time.process_time()
    tokens = tokenize_requests(backend.inner.tokenizer, requests)
    print(f"tokenised in {time.perf_counter() - start:.0f} s ({time.process_time() - cpu:.0f} CPU-s); RSS {rss()}", flush=True)
    units = _units(range(len(requests)), tokens)
    print(f"{len(units):,} rows planned; RSS {rss()}; peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:,.0f} MB")


if __name__ == "__main__":
    main()
