"""The bbq preset's whole verdict for a *fair* model (no stereotype use) at a given accuracy, through the code of
``bias-audit run`` (``benchmarks/whole_verdict.py``): at which accuracy does the official BBQ test split let a
fair model pass? The calibration's noise levels are (0.95, 0.90) and (0.75, 0.60) (disambiguated, ambiguous);
the issue's targets assume accuracy >= 0.7. ``--threshold`` audits with both BBQ bias gates at another limit (a
user config naming the preset and that limit, as a team would write one): which limit can these items decide for a fair model?

    PYTHONPATH=$PWD nice -n 10 python benchmarks/bbq_fair_accuracy.py --accuracy 0.75,0.70 --runs 20 --seed 95
    PYTHONPATH=$PWD nice -n 10 python benchmarks/bbq_fair_accuracy.py --accuracy 0.75,0.70 --threshold 0.15
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from audit.cli.options import AuditOptions  # noqa: E402
from audit.datasets.bbq import simulator as bbq_sim  # noqa: E402
from audit.run.setup import build_session  # noqa: E402

PARTS = ROOT / "benchmarks" / "results" / "calibration" / "bbq_fair_accuracy"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accuracy", action="append", required=True, help="DIS,AMB accuracy of the fair model (repeatable)")
    ap.add_argument("--preset", default="bbq", choices=("bbq", "paper-b"))
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=95)
    ap.add_argument("--threshold", type=float, help="bbq_s_dis and bbq_s_amb at this limit (default: the preset's)")
    ap.add_argument("--power", action="store_true",
                    help="also each gate at 1.5x the limit in every condition (the simulator plants it in the smallest category)")
    ap.add_argument("--compliant", action="store_true", help="also every bias gate at 0.9x the limit in every condition")
    args = ap.parse_args()
    import whole_verdict as wv
    from shared_data import bbq_dir

    if bbq_dir() is None:
        raise SystemExit("the official BBQ files (../shared/bbq or $BIAS_AUDIT_BBQ_DIR) are needed")
    options = AuditOptions(preset=args.preset, data=f"bbq:{bbq_dir()}", no_cache=True, split="test")
    with tempfile.TemporaryDirectory() as tmp:  # the config is read when the session is built
        if args.threshold is not None:
            config = Path(tmp) / "limit.toml"
            config.write_text(f'preset = "{args.preset}"\n' + "".join(
                f"[gates.{g}]\nthreshold = {args.threshold!r}\n" for g in ("bbq_s_dis", "bbq_s_amb")))
            options.config, options.preset = str(config), None
        session = build_session(options)
    print(f"{args.preset}: bbq_s_dis at {session.config.gates['bbq_s_dis'].threshold:g}, "
          f"bbq_s_amb at {session.config.gates['bbq_s_amb'].threshold:g}", flush=True)
    limit = f"--limit{session.config.gates['bbq_s_dis'].threshold:g}"  # in every part's name, the preset's own too
    PARTS.mkdir(parents=True, exist_ok=True)
    for text in args.accuracy:
        dis, amb = (float(x) for x in text.split(","))
        name = f"acc{dis:g}-{amb:g}"
        bbq_sim.ACCURACY[name] = (dis, amb)  # one more level of the simulator (its noise_levels), this process only
        part = wv.measure(session, args.preset, "official", runs=args.runs, seed=args.seed, noise=name, shared=0.0,
                          kinds=("fair",) + ("compliant",) * args.compliant + ("power",) * args.power,
                          power_models=("bbq_s_dis:every", "bbq_s_amb:every"))
        part["limit"] = session.config.gates["bbq_s_dis"].threshold
        for model in part["models"]:
            tally = model["tallies"][session.config.correction]
            print(f"{args.preset}{limit}, {model['label']}, accuracy {dis:g} (disambiguated) / {amb:g} (ambiguous), "
                  f"{args.runs} runs: fail {tally['fail']:.2f}, inconclusive {tally['inconclusive']:.2f}, "
                  f"pass {tally['pass']:.2f}", flush=True)
        (PARTS / f"{args.preset}{limit}--{name}--seed{args.seed}.json").write_text(json.dumps(part, indent=1, default=float))


if __name__ == "__main__":
    main()
