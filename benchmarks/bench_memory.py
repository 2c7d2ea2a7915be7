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
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil  # noqa: E402


def measure_whole_run(preset: str, model: str, data: str, max_items: int | None = None, min_items: int | None = None,
                      device: str | None = None) -> dict:
    """One in-process ``bias-audit run`` of ``preset`` (no result cache): exit code, wall and CPU seconds, and this
    process's peak RSS in MB (``ru_maxrss``: its high-water mark so far, imports and model included)."""
    from audit.cli import main as cli_main

    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["run", "--preset", preset, "--model", model, "--data", data, "--no-cache", "--out", str(Path(tmp) / "out"),
               "--split", "test"]  # the figures of record: the official test split (the WinoBias presets ship "all")
        cmd += ["--max-items", str(max_items)] if max_items else []
        cmd += ["--device", device] if device else []
        if min_items:  # a smoke run smaller than the preset's min_items
            (Path(tmp) / "bias-audit.toml").write_text(f"min_items = {min_items}\n", encoding="utf-8")
            cmd += ["--config", str(Path(tmp) / "bias-audit.toml")]
        wall, cpu = time.perf_counter(), time.process_time()
        code = cli_main(cmd)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        conditions = _condition_peaks(Path(tmp) / "out" / "results.json")
    return {"preset": preset, "model": model, "max_items": max_items, "exit": code, "wall": wall, "cpu": cpu,
            "peak_mb": _peak_mb(), "condition_peaks_mb": conditions}


def _condition_peaks(results: Path) -> dict[str, float]:
    """The memory high-water mark at the end of each condition (results.json's ``cost.peak_rss_mb``), in run
    order: where it rises is the condition that set the peak; the run's own peak above the last is what came
    after scoring (gates, record, report)."""
    try:
        record = json.loads(results.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {f"{m['name']}:{name}" if len(record["models"]) > 1 else name: (c.get("cost") or {}).get("peak_rss_mb")
            for m in record["models"] for name, c in m["conditions"].items()}


def _peak_mb() -> float:
    """This process's own peak RSS: VmHWM, which a new program starts afresh. ``ru_maxrss`` survives execve on
    Linux, so a child started by a large benchmark process would report its parent's high-water mark (both
    presets read 9,700 MB that way in session 6)."""
    from audit.run.cost import peak_rss_mb

    peak = peak_rss_mb()
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def whole_run_in_subprocess(preset: str, model: str, data: str, max_items: int | None = None, min_items: int | None = None,
                            device: str | None = None, threads: int | None = None, timeout: float | None = None) -> dict:
    """``measure_whole_run`` in a fresh Python process (this script's ``--whole-run``), so that the peak is that
    run's own and not the high-water mark of whatever this process ran before; its output goes to stderr."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "whole_run.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--whole-run", "--preset", preset, "--model", model,
               "--data", data, "--json-out", str(result)]
        cmd += ["--max-items", str(max_items)] if max_items else []
        cmd += ["--min-items", str(min_items)] if min_items else []
        cmd += ["--device", device] if device else []
        cmd += ["--threads", str(threads)] if threads else []
        code = subprocess.run(cmd, stdout=sys.stderr, timeout=timeout).returncode
        if not result.is_file():
            raise RuntimeError(f"whole run of preset {preset!r} in a subprocess wrote no result (exit {code})")
        return json.loads(result.read_text(encoding="utf-8"))


def whole_run(args) -> None:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    took = measure_whole_run(args.preset, args.model, args.data, args.max_items, args.min_items, args.device)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(took), encoding="utf-8")
    print(f"whole run: preset {args.preset}, model {args.model}, max_items {args.max_items or 'all'} (exit {took['exit']}): "
          f"{took['wall']:.0f} s wall, {took['cpu']:.0f} CPU-s, peak RSS {took['peak_mb']:,.0f} MB")
    print("  high-water mark at the end of each condition (MB): " + ", ".join(
        f"{name} {mb:,.0f}" for name, mb in took["condition_peaks_mb"].items() if mb is not None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper-b")
    parser.add_argument("--condition", default="few_shot_k8")
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", default="reference-biased")
    parser.add_argument("--max-items", type=int)
    parser.add_argument("--after-scoring", action="store_true", help="time gates, record and report instead")
    parser.add_argument("--whole-run", action="store_true", help="peak RSS, wall and CPU of one whole run")
    parser.add_argument("--min-items", type=int, help="with --whole-run: min_items for a smoke run below the preset's")
    parser.add_argument("--device", help="with --whole-run: the run's --device")
    parser.add_argument("--threads", type=int, help="with --whole-run: torch threads")
    parser.add_argument("--json-out", help="with --whole-run: also write the figures to this JSON file")
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
