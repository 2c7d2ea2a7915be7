"""``bias-audit calibrate``: per gate of your config, on your data, the false-fail rate, the power and the
items needed for 80% power, measured on simulated models of known truth (``audit.run.calibrate``)."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

from audit.cli.options import OPTIONS, AuditOptions, _kwargs

#: the run options that say what is audited (the model options do not apply: the models are simulated)
DATA_OPTIONS = ("config", "preset", "data", "max-items", "split", "n-resamples", "categories")


def add_calibrate_options(parser: argparse.ArgumentParser) -> None:
    for opt in OPTIONS:
        if opt.name in DATA_OPTIONS:
            parser.add_argument(f"--{opt.name}", dest=opt.dest, **_kwargs(opt))
    parser.add_argument("--runs", type=int, default=20, metavar="N",
                        help="simulated audits per model and noise level (default 20; a rate's standard error is up to 0.5/sqrt(N))")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the simulation (default 0)")
    parser.add_argument("--json", action="store_true", help="print every measured rate as JSON")
    parser.add_argument("--whole-verdict", action="store_true",
                        help="instead of per gate: the verdict over every condition and gate of the config (fair, every bias "
                             "gate at 0.9x, each at 1.5x in every condition or in one), without and with the config's correction")
    parser.add_argument("--shared", type=float, default=0.0, metavar="P",
                        help="--whole-verdict: chance a condition's answer to an item is the model's run-wide one "
                             "(0, the default: independent conditions, the worst case without a correction)")


def _fmt(x: float, digits: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _items(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{int(math.ceil(x / 10.0) * 10):,}"


def cmd_calibrate(args: argparse.Namespace) -> int:
    from audit.errors import AuditError
    from audit.run import calibrate as cal
    from audit.run.calibrate_changes import (calibrate_debiasing, calibrate_regression, change_rows, debiasing_rows,
                                             regression_gate)
    from audit.run.setup import build_session

    if args.runs < 1:
        raise AuditError(f"--runs {args.runs}: expected a whole number of at least 1")
    values = {f: getattr(args, f, None) for f in AuditOptions.__dataclass_fields__ if f in {o.replace('-', '_') for o in DATA_OPTIONS}}
    options = AuditOptions(**values, no_cache=True)
    session = build_session(options)
    simulator = cal.dataset_simulator(session)
    if args.whole_verdict:
        return _whole_verdict(session, simulator, args)
    start = time.perf_counter()
    print(f"calibrate: {session.dataset.name} data '{session.config.data}', {len(session.items):,} items, "
          f"{args.runs} simulated audits per model", file=sys.stderr, flush=True)
    dot = None if args.json else lambda c: print(".", end="", file=sys.stderr, flush=True)
    cells = cal.calibrate(session, runs=args.runs, seed=args.seed, progress=dot)
    summaries = cal.summarize(cells, session.config, len(session.items))
    transfer = cal.transfer_rows(cal.calibrate_transfer(session, runs=args.runs, seed=args.seed, progress=dot))
    debiasing = debiasing_rows(calibrate_debiasing(session, runs=args.runs, seed=args.seed, progress=dot))
    regression = change_rows(calibrate_regression(session, runs=args.runs, seed=args.seed, progress=dot),
                             regression_gate(session))
    if not args.json:
        print(file=sys.stderr)
    if args.json:
        print(json.dumps(_as_json(session, simulator, cells, summaries, args) | {"transfer": transfer, "debiasing": debiasing,
                                                                                   "regression": regression},
                         indent=2))
    else:
        print(_as_text(session, simulator, summaries, args, time.perf_counter() - start))
        print(_transfer_text(transfer, session.config))
        print(_debiasing_text(debiasing, "Debiasing gate (debiasing_no_increase): the reference condition"))
        print(_debiasing_text(regression, f"Regression gate ({regression_gate(session)}): the approved run"))
    return 0


def _as_json(session, simulator, cells, summaries, args) -> dict:
    from audit.run.calibrate import cell_dict

    return {
        "dataset": session.dataset.name, "data": session.config.data, "split": session.config.split,
        "items": len(session.items), "runs": args.runs,
        "seed": args.seed, "confidence": session.config.confidence, "noise_levels": simulator.noise_levels,
        "planted_where": simulator.planted_where, "planted_items": simulator.planted_items,
        "gates": [{"gate": s.gate, "noise": s.noise, "seeds": s.seeds, "threshold": s.threshold, "false_fail": s.false_fail,
                   "pass_fair": s.pass_fair, "power": {f"{m:g}x": v for m, v in s.power.items()}, "coverage_min": s.coverage,
                   "coverage_pooled": s.coverage_pooled, "coverage_below_nominal": s.coverage_below,
                   "items_for_80pct_power_at_1.5x": None if math.isnan(s.items_for_power) else round(s.items_for_power)}
                  for s in summaries],
        "cells": [cell_dict(c, args.runs) for c in cells],
    }


def _as_text(session, simulator, summaries, args, seconds: float) -> str:
    lines = [f"Calibration of {session.config.data} ({session.dataset.name}, split {session.config.split}, {len(session.items):,} items), "
             f"{args.runs} simulated audits per model, seed {args.seed}, {session.config.confidence:.0%} intervals.",
             "Models: fair (true effect 0) and planted at 0.5x, 0.9x, 1.5x, 2x each gate's threshold, in "
             f"{simulator.planted_where}; noise " + "; ".join(f"{k}: {v}" for k, v in simulator.noise_levels.items()) + ".",
             "A condition over several seeds keeps each answer across seeds with probability 0.8.", "",
             f"{'gate':<12} {'noise':<5} {'seeds':>5} {'threshold':>9} {'false fail':>10} {'fair pass':>9} "
             f"{'power 1.5x':>10} {'power 2x':>8} {'coverage':>8} {'items for 80% power at 1.5x':>28}"]
    share = simulator.planted_items / len(session.items)
    for s in summaries:
        need = _items(s.items_for_power)
        if share < 1 and not math.isnan(s.items_for_power):
            need += f" ({_items(s.items_for_power * share)} in it)"
        lines.append(f"{s.gate:<12} {s.noise:<5} {s.seeds:>5} {s.threshold:>9g} {_fmt(s.false_fail):>10} {_fmt(s.pass_fair):>9} "
                     f"{_fmt(s.power.get(1.5)):>10} {_fmt(s.power.get(2.0)):>8} {_fmt(s.coverage) + ('*' if s.coverage_below else ''):>8} "
                     f"{need:>28}")
    lines += ["", "false fail: the largest fail rate of a model within the limit (fair, 0.5x, 0.9x); power: fail rate of a "
              "model beyond it; coverage: the lowest share of runs whose interval held the true value (* = below the "
              "nominal level beyond chance, binomial 1%); items: an "
              f"estimate from the measured interval width (scaled by 1/sqrt(n)), not a simulation at that size. "
              f"({seconds:.0f} s)"]
    return "\n".join(lines)


def _transfer_text(rows: list[dict], config) -> str:
    if not rows:
        return ""
    lines = ["", f"Transfer gate (threshold {config.gates['transfer'].threshold:g}): a biased bare model and a prompted one "
             "whose per-unit bias (the units transfer runs over) correlates with it at the true rho; claimed = the gate fails.", "",
             f"{'noise':<5} {'seeds':>5} {'true rho':>8} {'claimed':>7} {'coverage':>8}"]
    for r in rows:
        lines.append(f"{r['noise']:<5} {r['seeds']:>5} {r['true_rho']:>8.2f} {_fmt(r['claimed']):>7} {_fmt(r['coverage']):>8}")
    return "\n".join(lines)


def _debiasing_text(rows: list[dict], what: str) -> str:
    if not rows:
        return ""
    lines = ["", f"{what} answered by a model at the reference bias; the other run by one that changes nothing, "
             "only adds noise, or raises the bias to 1.5x the bias gate's threshold; "
             "fails = share of runs the gate fails (<= 0.05 wanted for the first two).", "",
             f"{'strategy':<11} {'reference':>9} {'seeds':>5} {'true change':>11} {'fails':>6} {'coverage':>8}"]
    for r in rows:
        change = "n/a" if math.isnan(r["true_change"]) else f"{r['true_change']:.4f}"
        lines.append(f"{r['strategy']:<11} {r['reference']:>8g}x {r['seeds']:>5} {change:>11} {_fmt(r['claimed']):>6} "
                     f"{_fmt(r['coverage']):>8}")
    return "\n".join(lines)


def _whole_verdict(session, simulator, args) -> int:
    """``--whole-verdict``: per model, the verdict's fail / inconclusive / pass rates over every condition and gate
    (``audit.run.calibrate_verdict``), uncorrected and under the config's correction, on the same answers."""
    from audit.run.calibrate_verdict import models_for, whole_verdict

    noise = "high" if "high" in simulator.noise_levels else next(iter(simulator.noise_levels))
    corrections = tuple(dict.fromkeys(("none", session.config.correction)))
    print(f"calibrate: the whole verdict over {len(session.config.conditions)} conditions, {args.runs} simulated audits "
          f"per model, noise {noise}, shared {args.shared:g}", file=sys.stderr, flush=True)
    models = whole_verdict(session, models_for(session, simulator, noise), runs=args.runs, seed=args.seed,
                           shared=args.shared, corrections=corrections)
    rows = [{"model": m.label, "where": m.where, "truth": m.truth, **{c: t.to_dict() for c, t in m.tallies.items()}}
            for m in models]
    if args.json:
        print(json.dumps({"runs": args.runs, "seed": args.seed, "noise": noise, "shared": args.shared, "models": rows}, indent=2))
        return 0
    print(f"{'model':<28} {'where':<44} " + " ".join(f"{c + ': fail/inc/pass':>28}" for c in corrections))
    for r in rows:
        cells = " ".join(f"{_fmt(r[c]['fail'])} / {_fmt(r[c]['inconclusive'])} / {_fmt(r[c]['pass'])}".rjust(28)
                         for c in corrections)
        print(f"{r['model']:<28} {r['where'][:44]:<44} {cells}")
    print("\nA model within every limit (fair, every bias gate at 0.9x) should rarely fail; one at 1.5x should not pass. "
          "The guarantee of each correction: docs/statistics.md, \"What the whole verdict guarantees\".")
    return 0
