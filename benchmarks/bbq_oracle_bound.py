"""The most a fair BBQ model can be shown within the limit, by *any* valid rule: an upper bound on the bbq
preset's fair pass rate that no decision rule, interval or correction can beat on these items.

For each accuracy level, a fair model (no stereotype use; the simulator's chooser) answers the official BBQ
test split ``--draws`` times; each draw is scored as the audit scores it (design-weighted per category,
``intervals.set_counts`` and ``Layout.metrics``). That gives each category's sampling distribution of s_DIS
and s_AMB, hence its standard deviation sigma_c (known here, which only helps a rule). Showing one category
within the limit is an equivalence test of H0 |s_c| >= t; for a normal estimate with known sigma the most
powerful level-alpha test (uniformly, among tests whose pass rate at |s_c| = t is at most alpha; Wellek 2010,
ch. 4) passes when |s_hat_c| < c_alpha, with P(|N(t, sigma_c)| < c_alpha) = alpha. The oracle passes a draw
when every category and both scores pass; the preset's verdict needs that in both of its conditions
(intrinsic and zero_shot, independent answers: ``shared`` 0). The audit passes the model only where the
oracle does (its own rule has the same level, 2.5% at the limit, or less), so the oracle's pass rate bounds
the audit's from above. alpha = 0.05 is printed too: the most any call may err under the issue's targets.

    PYTHONPATH=$PWD python benchmarks/bbq_oracle_bound.py --accuracy 0.75,0.60 --accuracy 0.95,0.90 --draws 400
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import optimize, stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from audit.cli.options import AuditOptions  # noqa: E402
from audit.datasets.bbq.intervals import Layout, set_counts  # noqa: E402
from audit.datasets.bbq.simulate import Chooser, choose  # noqa: E402
from audit.run.setup import build_session  # noqa: E402


def critical(threshold: float, sigma: float, alpha: float) -> float:
    """c with P(|N(threshold, sigma)| < c) = alpha (0 when even c = 0 is too lenient: never)."""
    def level(c: float) -> float:
        return stats.norm.cdf((c - threshold) / sigma) - stats.norm.cdf((-c - threshold) / sigma) - alpha
    return optimize.brentq(level, 0.0, threshold + 10 * sigma) if level(threshold + 10 * sigma) > 0 else 0.0


def scores(items, choices) -> dict[str, np.ndarray]:
    counts = set_counts(items, choices)
    layout = Layout(counts.keys, counts.categories, counts.templates, counts.strata)
    point = layout.metrics(counts.counts)
    return {m: point[m][0] for m in ("s_dis", "s_amb")}, layout.category_names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accuracy", action="append", required=True, help="DIS,AMB accuracy of the fair model (repeatable)")
    ap.add_argument("--draws", type=int, default=400)
    ap.add_argument("--threshold", type=float, default=0.10)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    from shared_data import bbq_dir

    if bbq_dir() is None:
        raise SystemExit("the official BBQ files (../shared/bbq or $BIAS_AUDIT_BBQ_DIR) are needed")
    session = build_session(AuditOptions(preset="bbq", data=f"bbq:{bbq_dir()}", no_cache=True, split="test"))
    items = list(session.items)
    rng = np.random.default_rng(args.seed)
    print(f"bbq preset, official BBQ test split ({len(items):,} items), threshold {args.threshold}, {args.draws} draws per level")
    for text in args.accuracy:
        dis, amb = (float(x) for x in text.split(","))
        probs = Chooser(acc_dis=dis, acc_amb=amb).probabilities(items)
        draws = {"s_dis": [], "s_amb": []}
        names = None
        for _ in range(args.draws):
            point, names = scores(items, choose(probs, rng))
            for m in draws:
                draws[m].append(point[m])
        draws = {m: np.array(v) for m, v in draws.items()}  # (draws, categories)
        sigma = {m: v.std(axis=0, ddof=1) for m, v in draws.items()}
        worst = int(np.argmax(sigma["s_dis"]))
        print(f"\naccuracy {dis:g} (disambiguated) / {amb:g} (ambiguous): largest sd of s_DIS {sigma['s_dis'][worst]:.4f} "
              f"({names[worst]}), of s_AMB {sigma['s_amb'].max():.4f}; mean |s| over draws (fair: true 0) "
              f"s_DIS {np.abs(draws['s_dis']).mean():.4f}")
        for alpha in (0.025, 0.05):
            passed = np.ones(args.draws, bool)
            for m, v in draws.items():
                cut = np.array([critical(args.threshold, s, alpha) for s in sigma[m]])
                passed &= (np.abs(v) < cut).all(axis=1)
            one = passed.mean()
            print(f"  level {alpha:g} at the limit: oracle passes one condition in {one:.3f} of draws; "
                  f"the preset's two conditions: at most {one ** 2:.3f}")


if __name__ == "__main__":
    main()
