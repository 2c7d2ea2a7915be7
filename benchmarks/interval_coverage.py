"""Coverage of the WinoBias bias gates' intervals with many runs per model (docs/calibration.md, "Coverage with
many runs"): the lowest coverage over a few models of 10-20 runs each is biased low, so this measures each
model on its own with enough runs to tell undercoverage from noise (binomial SE ~0.011 at 400 runs).

The same simulated models as ``bias-audit calibrate`` (the dataset's simulator, answers persisting across
seeds with probability 0.8) and the same interval functions the gates' measures call
(``intervals.debiased_interval`` for a_sb, ``intervals.gap_interval`` for rpa_gap), without the session's
other gates (so 400 runs per model stay within minutes).

    PYTHONPATH=$PWD nice -n 10 python benchmarks/interval_coverage.py --design official --seeds 3 --runs 400
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from calibration import DESIGNS, PARTS, SPLIT_OF_DESIGN, data_for  # noqa: E402

from audit.cli.options import AuditOptions  # noqa: E402
from audit.datasets.winobias.intervals import debiased_interval, gap_interval  # noqa: E402
from audit.run import calibrate as cal  # noqa: E402
from audit.run.setup import build_session  # noqa: E402


def measure(design: str, seeds: int, runs: int, seed: int, confidence: float, noises: list[str] | None = None) -> list[dict]:
    session = build_session(AuditOptions(preset="default", data=data_for("default", design), no_cache=True,
                                         split=SPLIT_OF_DESIGN.get(design)))
    simulator = session.dataset.simulator(session.items, session.config)
    items = list(session.items) * seeds
    rows = []
    for k_noise, noise in enumerate(simulator.noise_levels):
        if noises and noise not in noises:
            continue
        for k_gate, gate in enumerate(("a_sb", "rpa_gap")):
            threshold = session.config.gates[gate].threshold
            for k_mult, multiple in enumerate((0.0, 0.5, 0.9, 1.5, 2.0)):
                model = simulator.fair(noise) if multiple == 0 else simulator.planted(gate, multiple * threshold, noise)
                truth = model.truth["a_sb"] if gate == "a_sb" else model.sc.true_gap  # rpa_gap: the signed gap's interval
                rng = np.random.default_rng([seed, seeds, k_noise, k_gate, k_mult])
                below = above = fails = 0
                for _ in range(runs):
                    table = session.dataset.pair_table(items, cal.seeded_answers(model, seeds, 0.8, rng))
                    if gate == "a_sb":
                        iv = gated = debiased_interval(table, confidence=confidence)
                    else:
                        iv, gated = gap_interval(table, confidence=confidence)
                    below += truth < iv.lo - 1e-12
                    above += truth > iv.hi + 1e-12
                    fails += gated.lo > threshold  # the gates' rule: fail when the whole interval is beyond the limit
                rows.append({"noise": noise, "gate": gate, "multiple": multiple, "truth": truth, "runs": runs,
                             "coverage": 1 - (below + above) / runs, "lower_end_above_truth": below / runs,
                             "upper_end_below_truth": above / runs, "fail": fails / runs})
                print(rows[-1], flush=True)
    return rows


def table(part: dict) -> list[str]:
    lines = [f"`PYTHONPATH=$PWD nice -n 10 python benchmarks/interval_coverage.py --design {part['design']} --seeds {part['seeds']} "
             f"--runs {part['runs']} --seed {part['seed']}{part.get('options', '')}` ({part['seconds']:.0f} s; {part['design']} design, "
             f"{part['seeds']} seed(s), {part['confidence']:.0%} intervals). *lower end above*: the interval's lower end "
             f"above the truth (a false fail when the truth is at the threshold; nominal {(1 - part['confidence']) / 2:.3f}); "
             f"*upper end below*: its upper end below the truth (a false pass; nominal {(1 - part['confidence']) / 2:.3f}). rpa_gap: the signed gap's interval, "
             "from which the gated |gap| interval is derived (it covers whenever this one does). *fails*: the gate's "
             "rule on the gated interval (its lower end above the threshold): false fails of the fair, 0.5x and 0.9x "
             "models, power of the 1.5x and 2x ones.", "",
             "| gate | noise | model | truth | runs | coverage | lower end above | upper end below | fails |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in part["rows"]:
        model = "fair" if r["multiple"] == 0 else f"{r['multiple']:g}x"
        lines.append(f"| {r['gate']} | {r['noise']} | {model} | {r['truth']:.3f} | {r['runs']} | {r['coverage']:.3f} | "
                     f"{r['lower_end_above_truth']:.3f} | {r['upper_end_below_truth']:.3f} | {r['fail']:.3f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--design", choices=DESIGNS, default="official")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--runs", type=int, default=400)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--confidence", type=float, default=0.95)
    ap.add_argument("--noise", action="append", help="only these noise levels (low, high)")
    args = ap.parse_args()
    start = time.perf_counter()
    rows = measure(args.design, args.seeds, args.runs, args.seed, args.confidence, args.noise)
    PARTS.mkdir(parents=True, exist_ok=True)
    noise = "".join(f"--{n}" for n in args.noise or [])
    level = "" if args.confidence == 0.95 else f"--conf{args.confidence:g}"
    path = PARTS.parent / f"coverage--{args.design}--{args.seeds}seeds{noise}{level}.json"
    path.write_text(json.dumps({"design": args.design, "seeds": args.seeds, "runs": args.runs, "seed": args.seed,
                                "confidence": args.confidence,
                                "options": "".join(f" --noise {n}" for n in args.noise or [])
                                + ("" if args.confidence == 0.95 else f" --confidence {args.confidence:g}"),
                                "seconds": time.perf_counter() - start, "rows": rows}, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
