"""``bias-audit plan`` against the run it plans: predicted and measured wall time, and the run's peak memory.

The plan predicts the wall time two ways: with this machine's cores free (``estimate_s``, "free") and at the
load while it planned (``estimate_at_load_s``, "at load"). The run's own share of a core (its CPU seconds per
wall second, "share") says which applies: near the plan's ``share_cores_free`` when the run had the machine,
near ``share_while_planning`` when the load stayed as it was.

For each case (preset, data, model, items): a fresh result cache, ``bias-audit plan --json`` (its total
estimate), then ``bias-audit run`` with the same config, timed from the outside (wall clock, CPU seconds
and peak resident memory of the child process). Runs one case at a time, in this checkout.

    python benchmarks/bench_plan.py                       # every case below
    python benchmarks/bench_plan.py --case default-smollm2 --case study-smollm2
    python benchmarks/bench_plan.py --list

SmolLM2-135M is the converted checkpoint the tests use (``$BIAS_AUDIT_SMOLLM2_DIR``, else the newest
``~/.cache/bias-transfer-audit/test-models/smollm2-135m-*-hf-*``); the official data is found as the tests
find it (``../shared`` beside the repository, or ``$BIAS_AUDIT_WINOBIAS_DIR`` / ``$BIAS_AUDIT_BBQ_DIR``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from shared_data import bbq_dir, winobias_dir  # noqa: E402


def smollm2_dir() -> str | None:
    env = os.environ.get("BIAS_AUDIT_SMOLLM2_DIR")
    if env:
        return env
    found = sorted((Path.home() / ".cache" / "bias-transfer-audit" / "test-models").glob("smollm2-135m-*-hf-*"))
    return str(found[-1]) if found else None


def tiny_gpt2_dir(where: Path) -> str:
    """The tests' GPT-2 shape (2 layers, 64 wide, byte-level BPE trained on the generated prompts), saved once."""
    target = where / "tiny-gpt2"
    if not (target / "config.json").is_file():
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel

        sys.path.insert(0, str(ROOT / "benchmarks"))
        from bench_scoring import build_tokenizer

        tok = build_tokenizer(2000)
        torch.manual_seed(0)
        cfg = GPT2Config(vocab_size=len(tok), n_positions=1024, n_embd=64, n_layer=2, n_head=4,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
        GPT2LMHeadModel(cfg).save_pretrained(target)
        tok.save_pretrained(target)
    return str(target)


def cases(work: Path) -> dict[str, dict]:
    wino, bbq = winobias_dir(), bbq_dir()
    smol = smollm2_dir()
    out = {}
    if smol and wino:
        out["default-smollm2"] = dict(preset="default", model=smol, data=str(wino), items=None)
        out["study-smollm2"] = dict(preset="study", model=smol, data=str(wino), items=100)
    if wino:
        out["default-gpt2"] = dict(preset="default", model="gpt2", data=str(wino), items=None)
        out["study-gpt2"] = dict(preset="study", model="gpt2", data=str(wino), items=100)
    if bbq:
        out["bbq-reference"] = dict(preset="bbq", model="reference-biased", data=f"bbq:{bbq / 'data'}", items=400)
        out["paper-b-reference"] = dict(preset="paper-b", model="reference-biased", data=f"bbq:{bbq / 'data'}", items=12)
        if smol:
            out["bbq-smollm2"] = dict(preset="bbq", model=smol, data=f"bbq:{bbq / 'data'}", items=300)
    return out


def _run_measured(cmd: list[str], cwd: Path, env: dict) -> tuple[int, float, float, float, str]:
    """(exit code, wall s, CPU s, peak RSS MB, stderr tail) of one child process (``os.wait4``: its own usage)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read().decode(errors="replace")[-400:]
    return child.returncode, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, tail


def measure(name: str, case: dict, work: Path) -> dict:
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f'preset = "{case["preset"]}"', 'min_items = 4']
    if case["items"]:
        lines.append(f'max_items = {case["items"]}')
    (folder / "bias-audit.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(ROOT), BIAS_AUDIT_CACHE_DIR=str(folder / "cache"), HF_HUB_OFFLINE="1")
    reference = Path.home() / ".cache" / "bias-transfer-audit" / "reference"
    (folder / "cache").mkdir(exist_ok=True)
    if reference.is_dir() and not (folder / "cache" / "reference").exists():
        (folder / "cache" / "reference").symlink_to(reference)  # the built reference models, not rebuilt
    model = tiny_gpt2_dir(work) if case["model"] == "gpt2" else case["model"]
    common = ["--model", model, "--data", case["data"]]
    start = time.perf_counter()
    plan = subprocess.run([sys.executable, "-m", "audit.cli", "plan", "--json", *common], cwd=folder, env=env,
                          capture_output=True, text=True)
    plan_s = time.perf_counter() - start
    if plan.returncode != 0:
        raise SystemExit(f"{name}: plan failed ({plan.returncode}): {plan.stderr.strip()[-400:]}")
    planned = json.loads(plan.stdout)
    (folder / "plan.json").write_text(plan.stdout, encoding="utf-8")
    code, wall, cpu, peak_mb, tail = _run_measured(
        [sys.executable, "-m", "audit.cli", "run", *common, "--out", str(folder / "out")], folder, env)
    if code not in (0, 1):  # 1: a gate failed, which is a finished run
        raise SystemExit(f"{name}: run failed ({code}): {tail.strip()}")
    return {"case": name, "preset": case["preset"], "model": Path(case["model"]).name, "items": planned["n_items"],
            "requests": planned["total"]["requests"], "plan_s": plan_s, "predicted_s": planned["total"]["estimate_s"],
            "predicted_cpu_s": planned["total"].get("estimate_cpu_s"),
            "predicted_at_load_s": planned["total"].get("estimate_at_load_s"),
            "share_planned": (planned["total"].get("machine") or {}).get("share_while_planning"),
            "measured_s": wall, "cpu_s": cpu, "peak_rss_mb": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="append", help="run only these cases (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--work", help="working folder (default: a temporary one)")
    parser.add_argument("--items", type=int, help="max_items of every chosen case (instead of the case's own)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-plan-"))
    available = cases(work)
    if args.list:
        for name, case in available.items():
            print(name, case)
        return
    chosen = args.case or list(available)
    print(f"{'case':20s} {'items':>6s} {'requests':>9s} {'plan took':>9s} {'free':>8s} {'at load':>8s} {'measured':>9s} "
          f"{'err free':>8s} {'err load':>8s} {'CPU-s pred':>10s} {'CPU-s':>7s} {'error':>7s} {'share plan/run':>14s} "
          f"{'peak RSS':>9s}", flush=True)
    for name in chosen:
        if name not in available:
            raise SystemExit(f"--case {name}: not available here (see --list)")
        case = dict(available[name], items=args.items) if args.items else available[name]
        row = measure(name, case, work)

        def err(predicted, measured):
            return "n/a" if predicted is None else f"{(predicted - measured) / measured:+.0%}"

        def secs(v):
            return "unknown" if v is None else f"{v:.0f} s"

        pcpu, wall = row["predicted_cpu_s"], row["measured_s"]
        shares = f"{row['share_planned'] or 0:.2f}/{row['cpu_s'] / wall:.2f}"
        print(f"{name:20s} {row['items']:6d} {row['requests']:9,d} {row['plan_s']:7.0f} s {secs(row['predicted_s']):>8s} "
              f"{secs(row['predicted_at_load_s']):>8s} {wall:7.0f} s {err(row['predicted_s'], wall):>8s} "
              f"{err(row['predicted_at_load_s'], wall):>8s} {pcpu or 0:10.0f} {row['cpu_s']:7.0f} {err(pcpu, row['cpu_s']):>7s} "
              f"{shares:>14s} {row['peak_rss_mb']:6.0f} MB", flush=True)

if __name__ == "__main__":
    main()
