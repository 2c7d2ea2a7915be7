"""Coverage of the WinoBias bias gates' intervals with many runs per model (docs/calibration.md, "Coverage with
many runs"): the lowest coverage over a few models of 10-20 runs each is biased low, so this measures each
model on its own with enough runs to tell undercoverage from noise (binomial SE ~0.011 at 400 runs).

The same simulated models as ``bias-audit calibrate`` (the dataset's simulator, answers persisting across
seeds with probability 0.8) and the same interval functions the gates' measures call
(``intervals.debiased_interval`` for a_sb, ``intervals.gap_interval`` for rpa_gap), without the session's
other gates (so 400 runs per model stay within minutes).

``--transfer``: the transfer gate's reliability-corrected rho (``transfer_eiv.transfer_eiv``, the function the
gate's measure calls through ``corrected_transfer``) on the simulator's pairs of models of known true rho
(``WinoBiasSimulator.transfer``: a bare model at theta 0.3, a prompted one whose O-SB correlate with it at
rho), rho in {0, 0.5, 0.9}: coverage, and the gate's claim rate (the bare a_sb gate fails, rho is defined and
its lower end is above the threshold), each with a Clopper-Pearson interval.

``--transfer --preset bbq``: BBQ's corrected rho over templates (``bbq.transfer.corrected_transfer``) on the
official BBQ files (the audit's test split) and ``BBQSimulator.transfer``; ``--method observed`` measures the
previous interval. ``--render --preset bbq`` prints the stored tables (docs/calibration-bbq.md).

    PYTHONPATH=$PWD nice -n 10 python benchmarks/interval_coverage.py --design official --seeds 3 --runs 400
    PYTHONPATH=$PWD nice -n 10 python benchmarks/interval_coverage.py --design generated --transfer --runs 200 --noise low
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
from audit.datasets.bbq.transfer import corrected_transfer as bbq_transfer  # noqa: E402
from audit.datasets.winobias.transfer_eiv import transfer_eiv  # noqa: E402
from audit.run import calibrate as cal  # noqa: E402
from audit.run.setup import build_session  # noqa: E402
from scipy import stats  # noqa: E402


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


def rate(k: int, n: int) -> dict:
    """k of n with its 95% Clopper-Pearson interval."""
    if n == 0:
        return {"k": 0, "n": 0, "rate": None, "ci": [None, None]}
    ci = stats.binomtest(k, n).proportion_ci(0.95)
    return {"k": int(k), "n": int(n), "rate": k / n, "ci": [float(ci.low), float(ci.high)]}


def measure_transfer(design: str, seeds: int, runs: int, seed: int, confidence: float, noises: list[str] | None = None,
                     rhos: tuple[float, ...] = cal.TRANSFER_RHOS, preset: str = "default", method: str = "matched") -> list[dict]:
    """Per noise level and true rho: the corrected rho's coverage and the transfer gate's claim rate. WinoBias
    (``preset`` default): ``transfer_eiv`` on pair tables, a claim needing the bare a_sb gate to fail too. BBQ
    (``preset`` bbq): ``bbq.transfer.corrected_transfer`` (``method``: its bootstrap world, "observed" the
    previous interval) on the official files; a claim is the interval's lower end above the threshold (the bare
    model's true worst |s_AMB| is 0.40, four times the bbq_s_amb threshold, so its gate fails in every run)."""
    session = build_session(AuditOptions(preset=preset, data=data_for(preset, design), no_cache=True,
                                         split=SPLIT_OF_DESIGN.get(design)))
    cfg, ds = session.config, session.dataset
    boot = {"confidence": confidence, "n_resamples": cfg.n_resamples, "seed": cfg.seed}
    simulator = ds.simulator(session.items, cfg)
    items = list(session.items) * seeds
    threshold = cfg.gates["transfer"].threshold
    bias_threshold = cfg.gates[ds.bias_gate].threshold

    def corrected(sel_bare: list, sel_prompted: list) -> tuple[dict, bool]:
        if preset in ("bbq", "paper-b"):
            r = bbq_transfer((items, sel_bare), (items, sel_prompted), ds.item_id, boot, world=method)
            return r, True
        tb, tp = ds.pair_table(items, sel_bare), ds.pair_table(items, sel_prompted)
        return transfer_eiv(tb, tp, **boot).to_dict(), debiased_interval(tb, confidence=confidence).lo > bias_threshold

    rows = []
    for k_noise, noise in enumerate(simulator.noise_levels):
        if noises and noise not in noises:
            continue
        for k_rho, rho in enumerate(rhos):
            k_rho = cal.TRANSFER_RHOS.index(rho) if rho in cal.TRANSFER_RHOS else k_rho  # the same draws with --rho
            bare, prompted, truth = simulator.transfer(rho, noise, seed=seed + k_rho)
            rng = np.random.default_rng([seed, seeds, k_noise, 100 + k_rho])
            n_ci = covered = below = above = claimed = 0
            estimates, naive, widths = [], [], []
            for _ in range(runs):
                r, bare_fails = corrected(cal.seeded_answers(bare, seeds, 0.8, rng), cal.seeded_answers(prompted, seeds, 0.8, rng))
                lo, hi = r["rho_ci"]
                if r["defined"] and not np.isnan(r["rho"]) and not np.isnan(lo):
                    n_ci += 1
                    covered += lo - 1e-12 <= truth <= hi + 1e-12
                    below += truth < lo - 1e-12
                    above += truth > hi + 1e-12
                    claimed += bool(bare_fails and lo > threshold)
                    estimates.append(r["rho"])
                    naive.append(r["rho_naive"])
                    widths.append(hi - lo)
            cov_p = stats.binomtest(covered, n_ci, confidence).pvalue if n_ci else float("nan")
            rows.append({"noise": noise, "rho": rho, "truth": truth, "runs": runs, "with_interval": n_ci,
                         "coverage": rate(covered, n_ci), "coverage_p": cov_p, "lower_end_above_truth": rate(below, n_ci),
                         "upper_end_below_truth": rate(above, n_ci), "claimed": rate(claimed, runs),
                         "mean_rho": float(np.mean(estimates)) if estimates else None,
                         "mean_naive": float(np.mean(naive)) if naive else None,
                         "mean_width": float(np.mean(widths)) if widths else None,
                         "sd_rho": float(np.std(estimates, ddof=1)) if len(estimates) > 1 else None})
            print(rows[-1], flush=True)
    return rows


def _pct(r: dict) -> str:
    return "n/a" if r["rate"] is None else f"{r['rate']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]"


def transfer_table(part: dict) -> list[str]:
    lines = [f"`PYTHONPATH=$PWD nice -n 10 python benchmarks/interval_coverage.py --design {part['design']} --transfer "
             f"--seeds {part['seeds']} --runs {part['runs']} --seed {part['seed']}{part.get('options', '')}` "
             f"({part['seconds']:.0f} s; {part['design']} design, {part['seeds']} seed(s), {part['confidence']:.0%} intervals). "
             "Rates with their 95% Clopper-Pearson interval; *p*: two-sided binomial test of the coverage against the "
             "nominal level; *claimed*: the gate fails (the bare model's bias gate fails and the corrected rho's lower end is "
             "above 0.5; target >= 0.80 at rho 0.9, <= 0.05 at rho 0); *mean width (sd)*: the interval's mean width and "
             "the estimate's standard deviation over the runs.", "",
             "| noise | true rho | runs with an interval | coverage | p | lower end above | upper end below | claimed | mean rho (naive) | mean width (sd) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in part["rows"]:
        mean = "n/a" if r["mean_rho"] is None else f"{r['mean_rho']:.3f} ({r['mean_naive']:.3f})"
        width = "n/a" if r["mean_width"] is None else f"{r['mean_width']:.3f}"
        if r.get("sd_rho") is not None:
            width += f" ({r['sd_rho']:.3f})"
        lines.append(f"| {r['noise']} | {r['truth']:.2f} | {r['with_interval']} of {r['runs']} | {_pct(r['coverage'])} | "
                     f"{'< 0.001' if r['coverage_p'] < 0.001 else format(r['coverage_p'], '.3f')} | {_pct(r['lower_end_above_truth'])} | {_pct(r['upper_end_below_truth'])} | "
                     f"{_pct(r['claimed'])} | {mean} | {width} |")
    return lines


def transfer_section() -> list[str]:
    """docs/calibration.md's section on the transfer gate's coverage (``calibration.py --render`` appends it)."""
    parts = [json.loads(p.read_text()) for p in sorted(PARTS.parent.glob("transfer-coverage--*.json"))]
    if not parts:
        return []
    lines = ["", "## Coverage with many runs (transfer gate)", "",
             "The transfer gate's reliability-corrected rho (`transfer_eiv`) on the simulator's pairs of models of known "
             "true rho (a bare model at theta 0.3, a prompted one whose O-SB correlate with it at rho), 200 runs per cell. "
             "The tables marked *before* measured the previous interval: a basic bootstrap that resampled the observed "
             "twin pairs as they were, so that the bootstrap world's truth was the attenuated plug-in Pearson and its O-SB "
             "as reliable as the observed ones. Two errors followed: where the prompted O-SB are noisy (reliability "
             "0.5-0.7) its pivot was too narrow (rho 0 and 0.5 covered in 0.84-0.92 of runs, beyond chance), and at rho 0.9 "
             "too wide (the world's rho, about 0.6-0.75, spreads more than one near 0.9: coverage 0.985-1.000). The "
             "interval now resamples pairs (jointly in both conditions, as before) in a world matched to the corrected "
             "moments: each occupation's mean pair of O-SB is mapped by T^(1/2) V^(-1/2) (V: the observed covariance over "
             "occupations, T: the noise-corrected one), each pair shifted by the least-squares occupation component that "
             "moves the means there, so the world's true O-SB have the estimated true variances and rho while each pair's "
             "noise is unchanged; percentile interval for rho (a basic one reflects the clipped upper tail at rho near 1 "
             "onto the lower end: coverage 0.51 at rho 0.9), basic for the retained share. Variants tried in two probes of 100 runs "
             "per cell of the generated set (high noise, rho 0 / 0.5 / 0.9): the observed-world basic interval 0.76 / "
             "0.86 / 0.99; on Fisher's z 0.82 / 0.80 / 0.45; a jackknife normal interval 0.92 / 0.99 / 0.82 (claims at "
             "0.9: 0.63); the matched world's percentile interval 0.90 / 0.97 / 0.99 (claims 0.87). Result (the tables without *before*): "
             "coverage 0.934-0.970 at rho 0 and 0.5 in all eight cells, none below 0.95 beyond chance; 0.955-0.985 at 0.9 "
             "except the generated set at low noise (1.000, over-covering); claimed at rho 0 in no run, at 0.5 (the "
             "threshold) in 0.03-0.06 (before: up to 0.10), at 0.9 in 0.94-1.00 except the 640-item generated set at high "
             "twin noise, 0.605 (before 0.815, which the too narrow interval bought): that design needs more items. A "
             "fixed-design (wild, sign-flip) bootstrap of the matched world's residuals measured about the same on the "
             "generated set (200 runs: high noise 0.934 / 0.930 / 0.990, claims at 0.9 0.63; low 0.96 / 0.96 / 1.00). "
             "The transfer rows of the "
             "preset sections above (30-40 runs through `AuditSession.evaluate`) and of the summary were measured with the "
             "previous interval and have not been re-run.", ""]
    for part in parts:
        if part.get("method"):
            lines += [f"*{part['method']}*", ""]
        lines += [*transfer_table(part), ""]
    return lines


def bbq_transfer_section() -> list[str]:
    """docs/calibration-bbq.md's tables of BBQ's transfer coverage (``--render --preset bbq``)."""
    lines = []
    for path in sorted(PARTS.parent.glob("bbq-transfer-coverage--*.json")):
        part = json.loads(path.read_text())
        lines += [f"*{'previous interval (observed world)' if part['method'] == 'observed' else 'matched world'}*", "",
                  *transfer_table(part), ""]
    return lines


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
    ap.add_argument("--transfer", action="store_true", help="the transfer gate's corrected rho instead of a_sb and rpa_gap")
    ap.add_argument("--preset", choices=("default", "bbq"), default="default",
                    help="--transfer: bbq measures BBQ's corrected transfer on the official BBQ files (--design official)")
    ap.add_argument("--method", choices=("matched", "observed"), default="matched",
                    help="--transfer --preset bbq: the bootstrap world (observed: the previous interval)")
    ap.add_argument("--rho", type=float, action="append", help="--transfer: only these true rho (default 0, 0.5, 0.9)")
    ap.add_argument("--render", action="store_true", help="print the markdown tables of the stored results")
    args = ap.parse_args()
    if args.render:
        print("\n".join(transfer_section() if args.preset == "default" else bbq_transfer_section()))
        return
    if args.preset != "default" and not args.transfer:
        raise SystemExit("--preset bbq: with --transfer only")
    start = time.perf_counter()
    if args.transfer:
        rows = measure_transfer(args.design, args.seeds, args.runs, args.seed, args.confidence, args.noise,
                                preset=args.preset, method=args.method, rhos=tuple(args.rho or cal.TRANSFER_RHOS))
    else:
        rows = measure(args.design, args.seeds, args.runs, args.seed, args.confidence, args.noise)
    PARTS.mkdir(parents=True, exist_ok=True)
    noise = "".join(f"--{n}" for n in args.noise or [])
    level = "" if args.confidence == 0.95 else f"--conf{args.confidence:g}"
    kind = ("transfer-coverage" if args.preset == "default" else f"{args.preset}-transfer-coverage") if args.transfer else "coverage"
    method = ("" if args.method == "matched" else f"--{args.method}") + "".join(f"--rho{r:g}" for r in args.rho or [])
    path = PARTS.parent / f"{kind}--{args.design}--{args.seeds}seeds{noise}{level}{method}.json"
    path.write_text(json.dumps({"design": args.design, "seeds": args.seeds, "runs": args.runs, "seed": args.seed,
                                "transfer": args.transfer, "preset": args.preset, "method": args.method,
                                "confidence": args.confidence,
                                "options": "".join(f" --noise {n}" for n in args.noise or [])
                                + ("" if args.confidence == 0.95 else f" --confidence {args.confidence:g}")
                                + ("" if args.preset == "default" else f" --preset {args.preset}")
                                + ("" if args.method == "matched" else f" --method {args.method}")
                                + "".join(f" --rho {r:g}" for r in args.rho or []),
                                "seconds": time.perf_counter() - start, "rows": rows}, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
