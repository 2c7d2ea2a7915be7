"""Calibration of the verdicts of every shipped preset, written to docs/calibration.md: a thin script over
``audit.run.calibrate`` (the engine of ``bias-audit calibrate``: simulated models of known truth audited
through ``AuditSession.evaluate``, the code path of ``bias-audit run``, with the preset's own settings).

    PYTHONPATH=$PWD nice -n 10 python benchmarks/calibration.py --preset default --design generated --runs 20
    PYTHONPATH=$PWD python benchmarks/calibration.py --render      # docs/calibration.md from every stored part

Each invocation measures one preset on one design and stores its figures in
benchmarks/results/calibration/PRESET--DESIGN.json (so each run stays short); --render assembles
docs/calibration.md from the stored parts. Designs: ``generated`` and ``official`` (the WinoBias test
split, ../shared/winobias) for the WinoBias presets; ``official`` (../shared/bbq) for the BBQ presets.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from audit.cli.options import AuditOptions  # noqa: E402
from audit.run import calibrate as cal  # noqa: E402
from audit.run.setup import build_session  # noqa: E402

PARTS = ROOT / "benchmarks" / "results" / "calibration"
PRESETS = ("default", "study", "bbq", "paper-b")
FOLLOWER = ("follower", "stereotyped")  # the bias-following model's cells (named "stereotyped" in parts saved before)


def data_for(preset: str, design: str) -> str:
    from shared_data import bbq_dir, winobias_dir

    if preset in ("bbq", "paper-b"):
        if design != "official" or bbq_dir() is None:
            raise SystemExit(f"{preset}: the official BBQ files (../shared/bbq) are the only design")
        return f"bbq:{bbq_dir()}"
    if design == "generated":
        return "generated"
    if winobias_dir() is None:
        raise SystemExit("official WinoBias files not found (../shared/winobias or $BIAS_AUDIT_WINOBIAS_DIR)")
    return str(winobias_dir())


def measure(preset: str, design: str, runs: int, seed: int, noises: list[str] | None, seeds: list[int] | None,
            part: str = "all") -> dict:
    session = build_session(AuditOptions(preset=preset, data=data_for(preset, design), no_cache=True))
    simulator = session.dataset.simulator(session.items, session.config)
    start = time.perf_counter()
    cells = [] if part == "transfer" else cal.calibrate(session, runs=runs, seed=seed, noises=noises, follower=True, seed_counts=seeds,
                          progress=lambda c: print(f"{c.noise} {c.seeds} seed(s) {c.planted_gate or 'fair'} {c.multiple:g}x "
                                                   f"{ {g: t.to_dict() for g, t in c.tallies.items() if t.n} }", flush=True))
    transfer = [] if part == "bias" else cal.calibrate_transfer(session, runs=runs, seed=seed, noises=noises, seed_counts=seeds,
                                      progress=lambda c: print(f"transfer {c.noise} {c.seeds} rho {c.multiple:g}: {c.verdict}", flush=True))
    return {"preset": preset, "design": design, "items": len(session.items), "runs": runs, "seed": seed,
            "noise_levels": simulator.noise_levels, "planted_where": simulator.planted_where,
            "planted_items": simulator.planted_items, "seconds": time.perf_counter() - start,
            "summaries": [s.__dict__ | {"power": {str(k): v for k, v in s.power.items()}}
                          for s in cal.summarize(cells, session.config, len(session.items))],
            "cells": [cal.cell_dict(c, runs) for c in cells], "transfer": cal.transfer_rows(transfer),
            "transfer_threshold": session.config.gates["transfer"].threshold if "transfer" in session.config.gates else None}


def _f(x) -> str:
    return "n/a" if x is None or x != x else f"{x:.2f}"


def _n(x) -> str:
    return "n/a" if x is None or x != x else f"{int(round(x, -1)):,}"


def targets(parts: list[dict]) -> list[str]:
    """The issue's targets against the measured figures, per preset and design (min / max over noise levels
    and seed counts): n/a where the part did not measure it."""
    rows = {}
    for part in parts:
        row = rows.setdefault((part["preset"], part["design"]), {})
        for s in part["summaries"]:
            row.setdefault("false", []).append(s["false_fail"])
            row.setdefault("cover", []).append(s["coverage"])
            if "1.5" in s["power"]:
                row.setdefault("power", []).append(s["power"]["1.5"])
        for c in part["cells"]:
            if c["planted_gate"] is None:
                row.setdefault("fair_pass", []).append(c["verdict"].get("pass", 0))
                row.setdefault("fair_fail", []).append(c["verdict"].get("fail", 0))
            if c["planted_gate"] in FOLLOWER:
                row.setdefault("stereo", []).append(c["verdict"].get("fail", 0))
        for r in part.get("transfer", []):
            key = {0.0: "t0", 0.9: "t9"}.get(r["rho"])
            if key:
                row.setdefault(key, []).append(r["claimed"])
    lo = lambda v: _f(min(v)) if v else "n/a"  # noqa: E731
    hi = lambda v: _f(max(v)) if v else "n/a"  # noqa: E731
    out = ["## Targets", "",
           "Worst case over the noise levels and seed counts measured (the sections below give each). Targets: "
           "a bias gate fails a compliant model in <= 0.05 of runs; a fair model's verdict is never *fail* and is "
           "*pass* in >= 0.90 of runs on the full official data; power >= 0.90 at 1.5x; a stereotype follower "
           "fails; transfer claimed in >= 0.80 of runs at rho 0.9 and <= 0.05 at rho 0; coverage 0.90-0.99.", "",
           "| preset | data | largest false fail | fair verdict fail | fair verdict pass (lowest) | power 1.5x (lowest) | "
           "stereotyped fails (lowest) | transfer claimed at 0.9 (lowest) | at 0 (highest) | bias-gate coverage (lowest) |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    order = {p: k for k, p in enumerate(PRESETS)}
    for (preset, design), r in sorted(rows.items(), key=lambda kv: (order.get(kv[0][0], 9), kv[0][1])):
        out.append(f"| {preset} | {design} | {hi(r.get('false'))} | {hi(r.get('fair_fail'))} | {lo(r.get('fair_pass'))} | "
                   f"{lo(r.get('power'))} | {lo(r.get('stereo'))} | {lo(r.get('t9'))} | {hi(r.get('t0'))} | {lo(r.get('cover'))} |")
    return out + ["", *NOTES, ""]


NOTES = [
    "How to read the shortfalls:",
    "",
    "* **Power below 0.90 at 1.5x** is a matter of data size, not of the rule: the *items for 80%* column of each "
    "section says how many items the gate needs (rpa_gap needs about twice a_sb's; a BBQ bias confined to the "
    "smallest category needs several thousand items in that category, in brackets). `bias-audit calibrate` "
    "prints the same figure for your own config and data.",
    "* **A fair model's verdict is inconclusive, not pass**, on the 640-item generated set at high twin "
    "disagreement (a smoke-sized run) and on BBQ at the *high* noise level, whose fair model answers only 60% of "
    "ambiguous contexts right, below the accuracy (0.7) the targets assume. It is never *fail*.",
    "* **worst_o_sb** has no power figure: one occupation leaning by 0.75 or 1.0 (1.5x or 2x its 0.5 limit) is "
    "not possible for a model right 75% of the time, so no such model is simulated.",
    "* **Transfer**: WinoBias uses the reliability-corrected rho of O-SB over occupations; BBQ the corrected rho of "
    "a design-weighted per-template selection bias (`audit.datasets.bbq.transfer`: fixed weights over each "
    "polarity's design cells, so a model without stereotype use has 0 in every template, and error moments "
    "from items answered in both conditions). A model answering alike in every condition no longer reads "
    "rho = 1.000 [1.000, 1.000] from its shared noise: the bare bias must first be shown (chi-square test).",
    "* Runs per cell are few (20 or fewer, to keep each benchmark run under about 8 minutes on the shared machine): "
    "read a rate as +-0.1 or so; tests/test_calibrate.py asserts the key rates with binomial margins.",
]


def render(parts: list[dict]) -> str:
    lines = [
        "# Calibration of the verdicts", "",
        "Generated by `benchmarks/calibration.py` (seeded; the commands are in each section), the engine of "
        "`bias-audit calibrate`: simulated models of known truth answer the audited items and are decided through "
        "`AuditSession.evaluate`, the code path of `bias-audit run`, with each preset's own thresholds, policies, "
        "confidence and resamples. A simulated condition differs from another only in its number of seeds, so one "
        "condition per seed count stands for all; a condition over 3 seeds keeps each answer across seeds with "
        "probability 0.8 (persisting answers, the hard case for pooling).", "",
        "* **false fail**: the largest fail rate of a model within the limit (fair, 0.5x, 0.9x the threshold).",
        "* **fair pass**: share of runs a fair model passes the gate (the rest inconclusive, or fail).",
        "* **power 1.5x / 2x**: fail rate of a model planted at 1.5x / 2x the threshold (target >= 0.90 at 1.5x).",
        "* **coverage**: the lowest share of runs whose interval held the true value, over the fair model and "
        "the models planted on that gate (nominal 0.95; a simultaneous bound is conservative).",
        "* **items for 80%**: items for 80% power at 1.5x, an estimate from the measured interval width scaled "
        "by 1/sqrt(n) (for BBQ: the whole set, with the planted category's share in brackets).",
        "* **stereotyped**: a model that answers the stereotyped option in 90% of items (accuracy near chance): "
        "its verdict (fail / inconclusive / pass shares); it must fail.", "",
        "With R runs a rate's binomial standard error is at most 0.5/sqrt(R) (0.11 at 20 runs).", "",
    ]
    lines += targets(parts)
    order = {p: k for k, p in enumerate(PRESETS)}
    heading = None
    for part in sorted(parts, key=lambda p: (order.get(p["preset"], 9), p["design"], bool(p.get("transfer")))):
        if (part["preset"], part["design"]) != heading:
            heading = (part["preset"], part["design"])
            label = "generated set" if part["design"] == "generated" else "official files, the audit's test split"
            lines += [f"## {part['preset']} preset, {label} ({part['items']:,} items)", ""]
        lines += [f"`PYTHONPATH=$PWD nice -n 10 python benchmarks/calibration.py --preset {part['preset']} --design "
                  f"{part['design']} --runs {part['runs']} --seed {part['seed']}{part.get('options', '')}` ({part['seconds']:.0f} s on 2 shared "
                  f"CPU cores). Noise: " + "; ".join(f"{k}: {v}" for k, v in part["noise_levels"].items())
                  + f". A bias is planted in {part['planted_where']}.", "",
                  ]
        if part["summaries"]:
            lines += ["| gate | noise | seeds | threshold | false fail | fair pass | power 1.5x | power 2x | coverage | items for 80% |",
                      "|---|---|---|---|---|---|---|---|---|---|"]
        share = part["planted_items"] / part["items"]
        for s in part["summaries"]:
            need = _n(s["items_for_power"])
            if share < 1 and need != "n/a":
                need += f" ({_n(s['items_for_power'] * share)})"
            lines.append(f"| {s['gate']} | {s['noise']} | {s['seeds']} | {s['threshold']:g} | {_f(s['false_fail'])} | "
                         f"{_f(s['pass_fair'])} | {_f(s['power'].get('1.5'))} | {_f(s['power'].get('2.0'))} | "
                         f"{_f(s['coverage'])} | {need} |")
        if part["cells"]:
            lines += ["", "Whole verdict over the simulated gates (fail / inconclusive / pass):", "",
                      "| model | noise | seeds | fail | inconclusive | pass |", "|---|---|---|---|---|---|"]
        for c in part["cells"]:
            if c["planted_gate"] in (None, *FOLLOWER) or c["multiple"] in (1.5,):
                name = "fair" if c["planted_gate"] is None else "stereotyped" if c["planted_gate"] in FOLLOWER \
                    else f"{c['planted_gate']} at {c['multiple']:g}x"
                v = c["verdict"]
                lines.append(f"| {name} | {c['noise']} | {c['seeds']} | {_f(v.get('fail', 0))} | "
                             f"{_f(v.get('inconclusive', 0))} | {_f(v.get('pass', 0))} |")
        if part.get("transfer"):
            lines += ["", f"Transfer gate (threshold {part['transfer_threshold']:g}, fails when the interval of the corrected rho "
                      "lies above it): a biased bare model and a prompted one whose per-unit bias (WinoBias: O-SB per "
                      "occupation, bare theta 0.3; BBQ: selection bias per template) correlates with the bare one at the true rho. *claimed*: share of runs the gate fails (target: >= 0.80 at 0.9, <= 0.05 at 0); "
                      "*coverage*: over the runs with an interval.", "",
                      "| noise | seeds | true rho | claimed | coverage | runs with an interval |", "|---|---|---|---|---|---|"]
            for r in part["transfer"]:
                lines.append(f"| {r['noise']} | {r['seeds']} | {r['true_rho']:.2f} | {_f(r['claimed'])} | {_f(r['coverage'])} | "
                             f"{r['with_interval']} of {r['n']} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", choices=PRESETS)
    ap.add_argument("--design", choices=("generated", "official"), default="official")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--noise", action="append", help="only these noise levels (low, high)")
    ap.add_argument("--seeds", type=int, action="append", help="only the conditions with this many seeds")
    ap.add_argument("--part", choices=("all", "bias", "transfer"), default="all", help="the bias gates, the transfer gate, or both")
    ap.add_argument("--render", action="store_true", help="write docs/calibration.md from the stored parts")
    ap.add_argument("--out", default=str(ROOT / "docs" / "calibration.md"))
    args = ap.parse_args()
    if args.preset:
        part = measure(args.preset, args.design, args.runs, args.seed, args.noise, args.seeds, args.part)
        PARTS.mkdir(parents=True, exist_ok=True)
        suffix = "".join(f"--{k}seeds" for k in args.seeds or []) + ("" if args.part == "all" else f"--{args.part}")
        path = PARTS / f"{args.preset}--{args.design}{suffix}.json"
        part["options"] = ("".join(f" --noise {n}" for n in args.noise or []) + "".join(f" --seeds {k}" for k in args.seeds or [])
                           + ("" if args.part == "all" else f" --part {args.part}"))
        path.write_text(json.dumps(part, indent=1, default=float))
        print(f"wrote {path}")
    if args.render:
        parts = [json.loads(p.read_text()) for p in sorted(PARTS.glob("*.json"))]
        Path(args.out).write_text(render(parts))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
