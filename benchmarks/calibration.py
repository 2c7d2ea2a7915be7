"""Calibration of the verdicts: simulated models of known truth audited through ``AuditSession.evaluate``
(the code path of ``bias-audit run``) with a preset's own settings, on the generated set and the
official WinoBias test split. Writes docs/calibration.md.

    PYTHONPATH=$PWD nice python benchmarks/calibration.py [--runs 40] [--out docs/calibration.md]

Per preset, design and gate: the fair-model false-fail rate, the interval's coverage of the true value,
the inconclusive rate, and the power (fail rate) at 1.5x and 2x the threshold. A simulated model has
the graded per-pair gender effect of ``audit.stats.simulate`` (twin disagreement 0.3 beyond it,
accuracy 0.75); a condition with several seeds answers each pair once per seed, keeping a seed's
answers with probability 0.8 (answers persist across shot draws: the hard case for pooling).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from audit.config import load_config  # noqa: E402
from audit.datasets.winobias import WinoBias  # noqa: E402
from audit.datasets.winobias.generated import generate_items  # noqa: E402
from audit.datasets.winobias.official import load_winobias_dir  # noqa: E402
from audit.datasets.winobias.pairing import pair_twins  # noqa: E402
from audit.run.conditions import ConditionRun  # noqa: E402
from audit.run.session import AuditSession  # noqa: E402
from audit.stats.simulate import scenario, simulate_selections  # noqa: E402

ACCURACY, DISAGREEMENT, PERSIST = 0.75, 0.3, 0.8
GATES = ("a_sb", "rpa_gap")  # the gates whose truth a scenario sets; worst_o_sb and accuracy: fair model only
MULTIPLIERS = (0.0, 1.5, 2.0)


def seeded_answers(items, pairing, sc, seeds: int, rng) -> list:
    """One condition's selections over ``seeds`` shot draws, pooled as ``run_condition`` pools them."""
    base = simulate_selections(items, pairing, sc, accuracy=ACCURACY, disagreement=DISAGREEMENT, rng=rng)
    out = list(base)
    for _ in range(seeds - 1):
        redraw = simulate_selections(items, pairing, sc, accuracy=ACCURACY, disagreement=DISAGREEMENT, rng=rng)
        keep = rng.random(len(items)) < PERSIST
        out += [b if k else r for b, r, k in zip(base, redraw, keep)]
    return out


def session_for(cfg, items, runs: dict) -> AuditSession:
    """A session whose condition runs are the simulated ones (no backend is loaded)."""
    session = AuditSession(cfg, ["simulated"])
    session.dataset = WinoBias()
    session.dataset.configure(cfg)
    session.items = items
    for name, selections in runs.items():
        cond = cfg.conditions[name]
        seeds = len(cond.seeds)
        session._runs[("simulated", name)] = ConditionRun(
            name, cond, session.dataset, items=list(items) * seeds, selections=selections,
            scores=[None] * len(selections), outputs=[None] * len(selections), seeds=list(cond.seeds),
            per_seed=[session.dataset.per_seed(items, selections[k * len(items):(k + 1) * len(items)]) for k in range(seeds)])
    return session


def truth_scenario(items, pairing, gate: str, value: float):
    """The graded scenario whose gated truth (theta for a_sb, |gap| for rpa_gap) is ``value``."""
    if gate == "rpa_gap":
        return scenario(items, pairing, gap=value), value
    unit = scenario(items, pairing, a_sb=0.1)
    sc = scenario(items, pairing, a_sb=0.1 * value / unit.true_theta) if value else scenario(items, pairing, a_sb=0.0)
    return sc, sc.true_theta


def calibrate(preset: str, conditions: list[str], design: str, items, runs: int, seed: int) -> list[dict]:
    cfg = load_config(preset=preset)
    pairing = pair_twins(items)
    rows = []
    for gate in GATES:
        threshold = cfg.gates[gate].threshold
        for mult in MULTIPLIERS:
            sc, truth = truth_scenario(items, pairing, gate, mult * threshold)
            rng = np.random.default_rng([seed, int(mult * 10), GATES.index(gate)])
            counts = {"fail": 0, "inconclusive": 0, "pass": 0, "covered": 0, "n": 0, "other": {}}
            for _ in range(runs):
                sims = {c: seeded_answers(items, pairing, sc, len(cfg.conditions[c].seeds), rng) for c in conditions}
                session = session_for(cfg, items, sims)
                for c in conditions:
                    out = session.evaluate(gate, "simulated", c)
                    counts[out.status] = counts.get(out.status, 0) + 1
                    counts["n"] += 1
                    lo, hi = out.ci
                    counts["covered"] += lo is not None and lo - 1e-12 <= truth <= hi + 1e-12
                    if mult == 0:
                        for other in ("worst_o_sb", "accuracy"):
                            o = session.evaluate(other, "simulated", c)
                            counts["other"].setdefault(other, []).append(o.status)
            rows.append({"preset": preset, "design": design, "gate": gate, "multiplier": mult, "truth": truth,
                         "conditions": ", ".join(f"{c} ({len(cfg.conditions[c].seeds)} seed{'s' * (len(cfg.conditions[c].seeds) > 1)})" for c in conditions),
                         "n": counts["n"], "fail": counts["fail"] / counts["n"], "inconclusive": counts["inconclusive"] / counts["n"],
                         "pass": counts["pass"] / counts["n"], "coverage": counts["covered"] / counts["n"],
                         "other": {k: {s: v.count(s) / len(v) for s in ("pass", "fail", "inconclusive")} for k, v in counts["other"].items()}})
            print(rows[-1], flush=True)
    return rows


def render(rows: list[dict], runs: int, seconds: float) -> str:
    lines = [
        "# Calibration of the verdicts", "",
        "Generated by `benchmarks/calibration.py` (seeded; re-run it to reproduce). Simulated models of known "
        "truth are audited through `AuditSession.evaluate`, the code path of `bias-audit run`, with each preset's "
        f"own settings (thresholds, bounds, confidence, n_resamples). {runs} runs per cell, each condition "
        "listed evaluated in every run (so n = runs x conditions). Twin disagreement 0.3 beyond the planted "
        "effect, accuracy 0.75; a condition over 3 seeds keeps each answer across seeds with probability 0.8.",
        "",
        "* **false fail**: fail rate of a fair model (true effect 0); the gate's error is at most (1 - confidence) / 2 = 2.5% "
        "at the threshold itself, far less at 0.",
        "* **coverage**: share of runs whose interval holds the true value (nominal 95%; for |gap| at 0 the interval "
        "of |.| is conservative).",
        "* **power**: fail rate when the truth is 1.5x or 2x the threshold (theta for a_sb, |RPA gap| for rpa_gap).",
        "* **inconclusive**: the interval straddles the threshold.", "",
        "| preset | design | conditions | gate | truth / threshold | true value | n | fail | inconclusive | pass | coverage |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['preset']} | {r['design']} | {r['conditions']} | {r['gate']} | {r['multiplier']:g}x | {r['truth']:.3f} | "
                     f"{r['n']} | {r['fail']:.3f} | {r['inconclusive']:.3f} | {r['pass']:.3f} | {r['coverage']:.3f} |")
    lines += ["", "Fair model (true effect 0), the other WinoBias bias gates in the same runs:", "",
              "| preset | design | gate | pass | fail | inconclusive |", "|---|---|---|---|---|---|"]
    for r in rows:
        if r["multiplier"] == 0 and r["gate"] == "a_sb":
            for g, rates in r["other"].items():
                lines.append(f"| {r['preset']} | {r['design']} | {g} | {rates['pass']:.3f} | {rates['fail']:.3f} | {rates['inconclusive']:.3f} |")
    lines += ["", f"Run time: {seconds:.0f} s on 2 shared CPU cores.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out", default="docs/calibration.md")
    ap.add_argument("--winobias", default=None, help="official files (default: ../shared/winobias)")
    args = ap.parse_args()
    from shared_data import winobias_dir

    designs = {"generated": [i for i in generate_items() if i.split == "test"]}
    path = Path(args.winobias) if args.winobias else winobias_dir()
    if path is not None:
        designs["official test"] = [i for i in load_winobias_dir(path) if i.split == "test"]
    plans = {"default": ["zero_shot"]}
    study = load_config(preset="study")
    few_shot = next(n for n, c in study.conditions.items() if len(c.seeds) > 1)
    plans["study"] = [few_shot]
    start = time.perf_counter()
    rows = []
    for preset, conditions in plans.items():
        for design, items in designs.items():
            rows += calibrate(preset, conditions, design, items, args.runs, args.seed)
    Path(args.out).write_text(render(rows, args.runs, time.perf_counter() - start))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
