"""Reprint the calibration figures of docs/statistics.md (simulated models on both item designs).

    PYTHONPATH=$PWD python benchmarks/stats_calibration.py [--runs 300] [--winobias DIR]

Each line: design, statistic, true value, twin disagreement, bias of the estimate, coverage of its 95%
interval, and the gate's fail / inconclusive rates (default thresholds; bound "point" and "upper").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from audit.datasets.winobias.generated import generate_items  # noqa: E402
from audit.datasets.winobias.official import load_winobias_dir  # noqa: E402
from audit.datasets.winobias.pairing import pair_twins  # noqa: E402
from audit.datasets.winobias.simulate import calibration_cell  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--winobias", default=None, help="directory of the official files (default: ../shared/winobias)")
    args = ap.parse_args()
    from shared_data import winobias_dir

    designs = {"generated": [i for i in generate_items() if i.split == "test"]}
    path = Path(args.winobias) if args.winobias else winobias_dir()
    if path is not None:
        designs["winobias"] = [i for i in load_winobias_dir(path) if i.split == "test"]
    print("design | statistic | truth | disagreement | bias | bias(theta^2) | coverage | fail(point) | inconcl.(point) | fail(upper) | inconcl.(upper) | noise floor")
    for name, items in designs.items():
        pairing = pair_twins(items)
        for statistic, truths in (("a_sb", (0.0, 0.10, 0.15, 0.20, 0.225)), ("rpa_gap", (0.0, 0.10, 0.15, 0.20))):
            for k, truth in enumerate(truths):
                for nu in (0.05, 0.20, 0.40):
                    cells = {b: calibration_cell(items, pairing, statistic, truth, disagreement=nu, runs=args.runs, seed=100 + k, bound=b)
                             for b in ("point", "upper")}
                    p, u = cells["point"], cells["upper"]
                    print(f"{name} | {statistic} | {p.truth:.3f} | {nu:.2f} | {p.bias:+.4f} | {p.bias_squared:+.5f} | {p.coverage:.3f} | "
                          f"{p.fail:.3f} | {p.inconclusive:.3f} | {u.fail:.3f} | {u.inconclusive:.3f} | {p.noise_floor:.3f}", flush=True)


if __name__ == "__main__":
    main()
