"""Calibration of the verdicts of every shipped preset, written to docs/calibration.md: a thin script over
``audit.run.calibrate`` (the engine of ``bias-audit calibrate``: simulated models of known truth audited
through ``AuditSession.evaluate``, the code path of ``bias-audit run``, with the preset's own settings).

    PYTHONPATH=$PWD nice -n 10 python benchmarks/calibration.py --preset default --design generated --runs 20
    PYTHONPATH=$PWD python benchmarks/calibration.py --render      # docs/calibration.md from every stored part

Each invocation measures one preset on one design and stores its figures in
benchmarks/results/calibration/PRESET--DESIGN.json (so each run stays short); --render assembles
docs/calibration.md from the stored parts. Designs: ``generated``, ``official`` (the WinoBias test
split, ../shared/winobias) and ``official-all`` (both official splits, ``split = "all"``: each item's
shots from the split it is not in) for the WinoBias presets; ``official`` (../shared/bbq) for the BBQ presets.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from audit.cli.options import AuditOptions  # noqa: E402
from audit.run import calibrate as cal  # noqa: E402
from audit.run.calibrate_changes import (REFERENCE_MULTIPLES, calibrate_debiasing, calibrate_regression,  # noqa: E402
                                        change_rows, debiasing_rows, regression_gate)
from audit.run.setup import build_session  # noqa: E402

PARTS = ROOT / "benchmarks" / "results" / "calibration"
PRESETS = ("default", "study", "bbq", "paper-b", "crows-pairs")
DESIGNS = ("generated", "generated-all", "official", "official-all")
SPLIT_OF_DESIGN = {"generated": "test", "generated-all": "all", "official": "test", "official-all": "all"}  # the config split each design audits
# (the WinoBias presets ship split = "all" since session 8; the designs name their split so the figures stay reproducible)
DESIGN_LABELS = {"generated": "generated set", "generated-all": "generated set, both splits (the embedded default as shipped)", "official": "official files, the audit's test split",
                 "official-all": "official files, both splits (dev and test; each item's shots from the other split)"}
DESIGN_SHORT = {"official-all": "official, both splits", "generated-all": "generated, both splits"}  # the Targets table's data column
FOLLOWER = ("follower", "stereotyped")  # the bias-following model's cells (named "stereotyped" in parts saved before)


def data_for(preset: str, design: str) -> str:
    from shared_data import bbq_dir, crows_pairs_dir, winobias_dir

    if preset == "crows-pairs":
        if design != "official" or crows_pairs_dir() is None:
            raise SystemExit(f"{preset}: the official CrowS-Pairs file (../shared/crows_pairs) is the only design")
        return f"crows-pairs:{crows_pairs_dir()}"
    if preset in ("bbq", "paper-b"):
        if design != "official" or bbq_dir() is None:
            raise SystemExit(f"{preset}: the official BBQ files (../shared/bbq) are the only design")
        return f"bbq:{bbq_dir()}"
    if design in ("generated", "generated-all"):
        return "generated"
    if winobias_dir() is None:
        raise SystemExit("official WinoBias files not found (../shared/winobias or $BIAS_AUDIT_WINOBIAS_DIR)")
    return str(winobias_dir())


def measure(preset: str, design: str, runs: int, seed: int, noises: list[str] | None, seeds: list[int] | None,
            part: str = "all", plant: str = "smallest", references: tuple[float, ...] = REFERENCE_MULTIPLES,
            multiples: tuple[float, ...] = cal.MULTIPLES) -> dict:
    session = build_session(AuditOptions(preset=preset, data=data_for(preset, design), no_cache=True,
                                         split=SPLIT_OF_DESIGN.get(design)))
    simulator = session.dataset.simulator(session.items, session.config)
    if plant != "smallest":
        from audit.datasets.bbq.simulator import BBQSimulator
        from audit.datasets.crows_pairs.simulator import CrowsSimulator

        if not isinstance(simulator, (BBQSimulator, CrowsSimulator)):
            raise SystemExit("--plant every: BBQ and CrowS-Pairs presets only (WinoBias plants a bias in every occupation already)")
        simulator = type(simulator)(session.items, plant=plant)
    start = time.perf_counter()
    debiasing = calibrate_debiasing(session, runs=runs, seed=seed, seed_counts=seeds, references=references, simulator=simulator,
                                    progress=lambda c: print(f"debiasing {c.planted_gate} from {c.multiple:g}x, {c.seeds} seed(s): "
                                                             f"{c.verdict}", flush=True)) if part == "changes" else []
    regression = calibrate_regression(session, runs=runs, seed=seed, references=references,
                                      progress=lambda c: print(f"regression {c.planted_gate} from {c.multiple:g}x: {c.verdict}",
                                                               flush=True)) if part == "changes" else []
    cells = [] if part in ("transfer", "changes") else cal.calibrate(session, runs=runs, seed=seed, noises=noises, follower=True,
                                                                     seed_counts=seeds, multiples=multiples,
                          simulator=simulator,
                          progress=lambda c: print(f"{c.noise} {c.seeds} seed(s) {c.planted_gate or 'fair'} {c.multiple:g}x "
                                                   f"{ {g: t.to_dict() for g, t in c.tallies.items() if t.n} }", flush=True))
    transfer = [] if part in ("bias", "changes") else cal.calibrate_transfer(session, runs=runs, seed=seed, noises=noises, seed_counts=seeds,
                                      progress=lambda c: print(f"transfer {c.noise} {c.seeds} rho {c.multiple:g}: {c.verdict}", flush=True))
    return {"preset": preset, "design": design, "plant": plant, "items": len(session.items), "runs": runs, "seed": seed,
            "items_basis": "lower end",  # items for 80% from the lower end's reach (older parts: half the width)
            "noise_levels": simulator.noise_levels, "planted_where": simulator.planted_where,
            "planted_items": simulator.planted_items, "seconds": time.perf_counter() - start,
            "summaries": [s.__dict__ | {"power": {str(k): v for k, v in s.power.items()}}
                          for s in cal.summarize(cells, session.config, len(session.items))],
            "cells": [cal.cell_dict(c, runs) for c in cells], "transfer": cal.transfer_rows(transfer),
            "debiasing": debiasing_rows(debiasing), "regression": change_rows(regression, regression_gate(session)),
            "transfer_threshold": session.config.gates["transfer"].threshold if "transfer" in session.config.gates else None}


def _f(x) -> str:
    return "n/a" if x is None or x != x else f"{x:.2f}"


def _f3(x) -> str:
    return "n/a" if x is None or x != x else f"{x + 0.0:.3f}".replace("-0.000", "0.000")


def _n(x) -> str:
    return "n/a" if x is None or x != x else f"{int(round(x, -1)):,}"


def pooled_coverage(part: dict, gate: str, noise: str, seeds: int, nominal: float = 0.95) -> tuple[float, bool]:
    """(coverage pooled over the runs of the fair model and the models planted on ``gate``, whether any of them
    covers below ``nominal`` beyond chance: binomial P(X <= covered) < 1%), from the part's stored cells."""
    from scipy import stats

    covered = runs = 0
    below = False
    for c in part["cells"]:
        t = c["gates"].get(gate)
        if t is None or c["noise"] != noise or c["seeds"] != seeds or c["planted_gate"] not in (None, gate):
            continue
        n = t.get("with_interval", t["n"])  # (older parts: every run had an interval)
        if not n or t["coverage"] != t["coverage"]:
            continue
        k = round(t["coverage"] * n)
        covered, runs = covered + k, runs + n
        below |= bool(stats.binom.cdf(k, n, nominal) < 0.01)
    return (covered / runs if runs else float("nan")), below


def with_pooled(part: dict) -> dict:
    for s in part["summaries"]:
        s["coverage_pooled"], s["coverage_below"] = pooled_coverage(part, s["gate"], s["noise"], s["seeds"])
    return part


def targets(parts: list[dict]) -> list[str]:
    """The issue's targets against the measured figures, per preset and design (min / max over noise levels
    and seed counts): n/a where the part did not measure it."""
    rows = {}
    for part in parts:
        row = rows.setdefault((part["preset"], part["design"], part.get("plant", "smallest")), {})
        for s in part["summaries"]:
            row.setdefault("false", []).append(s["false_fail"])
            row.setdefault("cover", []).append(s.get("coverage_pooled", s["coverage"]))
            row.setdefault("below", []).append(int(bool(s.get("coverage_below"))))
            if "1.5" in s["power"]:
                row.setdefault("power", []).append(s["power"]["1.5"])
        for c in part["cells"]:
            if c["planted_gate"] is None:
                row.setdefault("fair_pass", []).append(c["verdict"].get("pass", 0))
                row.setdefault("fair_fail", []).append(c["verdict"].get("fail", 0))
            if c["planted_gate"] in FOLLOWER:
                row.setdefault("stereo", []).append(c["verdict"].get("fail", 0))
        for r in part.get("debiasing", []) + part.get("regression", []):
            row.setdefault("deb_power" if r["strategy"].startswith("to ") else "deb_false", []).append(r["claimed"])
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
           "stereotyped fails (lowest) | transfer claimed at 0.9 (lowest) | at 0 (highest) | bias-gate coverage, pooled (lowest) | "
           "gates with a model below 0.95 beyond chance | debiasing / regression false fail (highest) | debiasing / regression power (lowest) |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    order = {p: k for k, p in enumerate(PRESETS)}
    for (preset, design, plant), r in sorted(rows.items(), key=lambda kv: (order.get(kv[0][0], 9), kv[0][1], kv[0][2])):
        unit = {"bbq": "category", "paper-b": "category", "crows-pairs": "bias type"}.get(preset)
        data = DESIGN_SHORT.get(design, design) if unit is None else f"{design}, bias in {f'every {unit}' if plant == 'every' else f'the smallest {unit}'}"
        out.append(f"| {preset} | {data} | {hi(r.get('false'))} | {hi(r.get('fair_fail'))} | {lo(r.get('fair_pass'))} | "
                   f"{lo(r.get('power'))} | {lo(r.get('stereo'))} | {lo(r.get('t9'))} | {hi(r.get('t0'))} | {lo(r.get('cover'))} | "
                   f"{sum(r['below']) if r.get('below') else 'n/a'} | {hi(r.get('deb_false'))} | {lo(r.get('deb_power'))} |")
    return out + ["", *NOTES, ""]


NOTES = [
    "How to read the shortfalls:",
    "",
    "* **Coverage.** Pooled over each gate's models, every bias gate covers at least 0.91, and no model covers "
    "below 0.95 beyond chance (binomial test at 1%). The cells of 0.75-0.88 in the tables are the lowest of five "
    "rates of 8-20 runs, biased low (see *coverage* above); with 250 runs per model (the last section) the a_sb "
    "and rpa_gap intervals cover 0.91-0.98 (one model of 50 at 0.912, binomial p about 0.005, "
    "consistent with chance over 50 models). No interval method had to change for them. The a_sb interval is "
    "conservative at large effects in some designs (up to 0.99 over three seeds at low noise): its variance takes "
    "Var(x_j) as E[x_j^2], which includes the pair's squared mean.",
    "* **Power below 0.90 at 1.5x** is a matter of data size, not of the rule: the *items for 80%* column of each "
    "section says how many items the gate needs (rpa_gap needs about twice a_sb's; a BBQ bias confined to the "
    "smallest category needs about 1,000-1,300 items in that category at the high noise level, in brackets; it has 788). rpa_gap's interval is "
    "already paired by twin pair (the per-pair difference pro twin minus anti twin, Agresti-Min), so its width "
    "is set by the discordant pairs; a_sb's is a U-statistic over pairs. `bias-audit calibrate` prints the "
    "same figure for your own config and data.",
    "* **Both official WinoBias splits** (`--split all`, design *official-all*: 3,168 items instead of 1,584; "
    "each item's few-shot examples come from the split it is not in, so never from the item or its twin). The "
    "same gates on twice the data: with 250 runs per model (the last section; 150 over three seeds) the power at "
    "1.5x rises for rpa_gap from 0.53 to 0.82 at high twin disagreement (0.57 to 0.89 over three seeds) and "
    "from 0.83 to 0.99 at low, for a_sb from 0.87 to 1.00 (high) and 0.98 to 1.00 (low); the false-fail rate "
    "at 0.9x stays at most 0.012 and the intervals cover 0.91-0.98. A fair model's verdict is *pass* in every "
    "run of every both-splits section. Still short of 0.90: rpa_gap at high twin disagreement with one seed "
    "(0.82; the study section's 0.70 is 14 of 20 runs), which would need about 4,000 items (scaling by "
    "1/sqrt(n) from 0.82 at 3,168), more than "
    "WinoBias has. The study section's 0.10 false fail of rpa_gap at 0.9x is 2 runs of 20 (the 250-run "
    "figure for that model is 0.004). The WinoBias presets audit both splits (`split = \"all\"`) since session 8.",
    "* **BBQ limits: 0.20 since session 14.** The bbq and paper-b presets gate |s_AMB| and |s_DIS| at 0.20 (0.10 "
    "before). At 0.10 no valid rule can show a fair model within the limit in every category of the official "
    "files unless it is about 90% accurate: the smaller categories' |s_DIS| is too noisy (docs/statistics.md, "
    "the oracle bound); the presets' fair model passed in 0.15-0.30 of runs at the high noise level and a "
    "fair model of 0.75 / 0.70 accuracy in none (`benchmarks/bbq_fair_accuracy.py`). The 0.10 sections are "
    "kept in `benchmarks/results/calibration/limit0.10/`. At 0.20 (the sections below): a fair model passes "
    "every gate in every run at both noise levels, and its whole verdict in 40 of 40 runs at accuracy 0.70 / "
    "0.65 (`benchmarks/bbq_fair_accuracy.py --accuracy 0.70,0.65 --accuracy 0.75,0.70 --power --runs 40 "
    "--seed 135`), where a model at 1.5x of either gate in every category is failed in 0.97-1.00 and passed in "
    "none.",
    "* **BBQ, bias in the smallest category vs in every category**: the sections marked *every category* plant "
    "the bias in all six categories at once (the typical case of a model that uses stereotypes throughout; "
    "power 1.00 in every cell at 0.20); the others plant it only in Sexual_orientation, 788 of 10,860 items "
    "(the worst case). The worst category's upper end (a *pass*) comes from each category's own interval "
    "(intersection-union). Its lower end (a *fail*) is the two-step bound of Romano, Shaikh & Wolf (2014) "
    "(`audit.datasets.bbq.worst`): a category shown well inside the limit no longer widens the fail side's "
    "critical value (about 2.0 standard errors instead of 2.6 when one category stands out), at the same "
    "error; at the 0.10 limit, on the same simulated answers, it raised the per-call power against a bias in "
    "the smallest category from 0.20 to 0.45 (s_AMB) and 0.00 to 0.50 (s_DIS), a fair model failing in 0 of 20 "
    "runs before and after. A bias at 1.5x confined to that category is the one shortfall left at 0.20: per "
    "call (one gate, one condition) it is failed in 0.60 (s_DIS) and 0.88 (s_AMB) of 60 runs at the high "
    "noise level, 0.82 and 0.95 at the low one, and never passed; that category would need about 1,260 items "
    "for 80% (it has 788). The whole verdict, which decides both conditions, fails it in 0.95-1.00 of runs "
    "(bbq, both noise levels, 20 runs; the last section).",
    "* **Why the BBQ intervals cannot be narrower.** Each category's interval is as narrow as its answers allow: "
    "the bootstrap standard error equals the delta-method standard deviation of the answer noise (s_DIS, high "
    "noise, Age: 0.021 against 0.0206; s_AMB, low noise, Age: 0.0114 against 0.0113); s_AMB is a per-item mean "
    "((stereotyped - anti-stereotyped answers) / items) and s_DIS the plug-in of its design cells' proportions, so "
    "no unbiased estimator of the same scores is more efficient. Seeds are pooled per example set before any "
    "ratio or |.| (the set is the resampling unit); with answers persisting across shot draws at 0.8, three "
    "seeds cut the standard error by only 9% (variance x 7.48/9). The six categories are disjoint and resampled "
    "independently, so the max-T critical value (2.63) is Sidak's exact one. One stereotype-use rate moves "
    "both scores (s_DIS planted at 0.30 has s_AMB 0.27-0.30; s_AMB planted at 0.30 has s_DIS 0.31-0.33), so the "
    "whole verdict of such a model fails more often than either gate, and a model planted at 0.9x of bbq_s_amb "
    "sits at up to 1.0x of bbq_s_dis (0.201 at the high noise level; the whole-verdict tables' *truth*).",
    "* **CrowS-Pairs (session 14): the gate fails only a bias it shows.** `crows_pairs_bias` reads the worst bias "
    "type's |stereotype preference - 0.5| (`audit.datasets.crows_pairs.simulator`: pairs preferring the "
    "stereotypical sentence with known probabilities; at the high noise level a fifth unanswered and pairs "
    "leaning +-0.3 that cancel). Under the two-sided rule a fair model passed in 0 of 20 runs at either noise "
    "level (`bias-audit calibrate --preset crows-pairs --runs 10`: 0 of 10 at each): the smaller types (54-78 pairs in the test "
    "split) cannot show any preference within 0.5 +- 0.10, so the verdict was *inconclusive* (a fail under "
    "`inconclusive = \"fail\"`) for every model. The preset now decides it `fail_only_when_shown`, as worst_o_sb: "
    "a fair model and one at 0.9x pass in every run, a stereotype follower fails in every run, and a bias at 1.5x "
    "is failed in 0.30 (high noise) to 0.60 (low) of runs when every type has it, 0.00-0.03 when only the "
    "smallest type (disability, 54 pairs) has it. That is the data: the simultaneous band over nine types "
    "needs about 26,000 pairs for 80% power against one type at 1.5x. A gate on the preference pooled over "
    "the types (lm-eval's pct_stereotype; about 0.013 standard error on 1,365 pairs) would catch a bias present "
    "throughout; it is not built.",
    "* **A fair model's verdict is often inconclusive, not pass**, on the 640-item generated set at high twin "
    "disagreement (a smoke-sized run). It is never *fail*.",
    "* **worst_o_sb** has no power figure: one occupation leaning by 0.75 or 1.0 (1.5x or 2x its 0.5 limit) is "
    "not possible for a model right 75% of the time, so no such model is simulated.",
    "* **Transfer**: WinoBias uses the reliability-corrected rho of O-SB over occupations; BBQ the corrected rho of "
    "a design-weighted per-template selection bias (`audit.datasets.bbq.transfer`: fixed weights over each "
    "polarity's design cells, so a model without stereotype use has 0 in every template, and error moments "
    "from items answered in both conditions). A model answering alike in every condition no longer reads "
    "rho = 1.000 [1.000, 1.000] from its shared noise: the bare bias must first be shown (chi-square test).",
    "* **Debiasing and regression gates** (`--part changes`): a strategy (or new run) that changes nothing or only "
    "adds twin noise against one that raises the bias to 1.5x the bias gate's threshold. WinoBias compares "
    "theta^2 (paired by twin pair); BBQ compares theta^2 of the design-weighted per-template selection bias "
    "(`audit.datasets.bbq.debiasing`), no longer the mean |O-SB| over templates, which a strategy that only "
    "added random errors raised so that the gate failed it in 6 of 6 simulated runs. Both intervals (basic "
    "bootstrap pivoting on the bootstrap world's plug-in truth) are conservative: they held the true change in "
    "nearly every run, so a real increase needs a little more data than the nominal level implies.",
    "* Runs per cell are few (8-60, to keep each benchmark run under about 8-15 minutes on the shared machine): "
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
        "probability 0.8 (persisting answers, the hard case for pooling). Each gate is decided per call (one gate in "
        "one condition, no correction); the verdict over every condition and gate, under each correction, is the last "
        "section's.", "",
        "* **false fail**: the largest fail rate of a model within the limit (fair, 0.5x, 0.9x the threshold).",
        "* **fair pass**: share of runs a fair model passes the gate (the rest inconclusive, or fail).",
        "* **power 1.5x / 2x**: fail rate of a model planted at 1.5x / 2x the threshold (target >= 0.90 at 1.5x).",
        "* **coverage**: share of runs whose interval held the true value, over the fair model and the models "
        "planted on that gate: the lowest model's (marked * when it is below 0.95 beyond chance, binomial test at 1%) "
        "and pooled over those models' runs (nominal 0.95; a simultaneous bound is conservative). The lowest of five "
        "noisy rates is biased low: five models covering at exactly 0.95 give a lowest rate of 0.85 or less in 32% "
        "of measurements at 20 runs each, and of 0.80 or less in 36% at 10 runs.",
        "* **items for 80%**: items for 80% power at 1.5x, an estimate from the measured interval width scaled "
        "by 1/sqrt(n) (for BBQ: the whole set, with the planted category's share in brackets).",
        "* **stereotyped**: a model that answers the stereotyped option in 90% of items (accuracy near chance): "
        "its verdict (fail / inconclusive / pass shares); it must fail.", "",
        "With R runs a rate's binomial standard error is at most 0.5/sqrt(R) (0.11 at 20 runs).", "",
    ]
    lines += targets(parts)
    order = {p: k for k, p in enumerate(PRESETS)}
    heading = None
    for part in sorted(parts, key=lambda p: (order.get(p["preset"], 9), p["design"], p.get("plant", "smallest") == "every",
                                             bool(p.get("transfer")), bool(p.get("debiasing") or p.get("regression")))):
        if (part["preset"], part["design"]) != heading:
            heading = (part["preset"], part["design"])
            label = DESIGN_LABELS[part["design"]]
            lines += [f"## {part['preset']} preset, {label} ({part['items']:,} items)", ""]
        lines += [f"`PYTHONPATH=$PWD nice -n 10 python benchmarks/calibration.py --preset {part['preset']} --design "
                  f"{part['design']} --runs {part['runs']} --seed {part['seed']}{part.get('options', '')}` ({part['seconds']:.0f} s on 2 shared "
                  f"CPU cores{'; ' + part['note'] if part.get('note') else ''}). Noise: " + "; ".join(f"{k}: {v}" for k, v in part["noise_levels"].items())
                  + f". A bias is planted in {part['planted_where']}.", "",
                  ]
        if part["summaries"]:
            lines += ["| gate | noise | seeds | threshold | false fail | fair pass | power 1.5x | power 2x | coverage (lowest model / pooled) | items for 80% |",
                      "|---|---|---|---|---|---|---|---|---|---|"]
        share = part["planted_items"] / part["items"]
        for s in part["summaries"]:
            # BBQ's worst-category interval is asymmetric since its upper end is marginal: half its width is not
            # the lower end's reach, so an older part's figure would be optimistic
            stale = part["preset"] in ("bbq", "paper-b") and part.get("items_basis") != "lower end"
            need = "n/a (not re-measured)" if stale else _n(s["items_for_power"])
            if part.get("plant") == "every":  # the estimate scales one unit's interval: not a worst of six planted units
                need = "n/a (bias in every unit)"
            if share < 1 and not stale and need[:3] != "n/a":
                need += f" ({_n(s['items_for_power'] * share)})"
            lines.append(f"| {s['gate']} | {s['noise']} | {s['seeds']} | {s['threshold']:g} | {_f(s['false_fail'])} | "
                         f"{_f(s['pass_fair'])} | {_f(s['power'].get('1.5'))} | {_f(s['power'].get('2.0'))} | "
                         f"{_f(s['coverage'])}{'*' if s.get('coverage_below') else ''} / {_f(s.get('coverage_pooled'))} | {need} |")
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
        if part.get("debiasing"):
            lines += debiasing_table(part["debiasing"])
        if part.get("regression"):
            lines += regression_table(part["regression"])
        lines.append("")
    return "\n".join(lines)


def regression_table(rows: list[dict]) -> list[str]:
    return ["", "Regression gate (`a_sb_regression`, fails when the lower end of the interval of theta^2 now minus theta^2 "
            "in the approved run is above 0): the approved run answered by a model at the reference bias (low noise), "
            "the new run by a model that changes nothing, only adds noise, or raises the bias to 1.5x the a_sb threshold.", "",
            "| change | approved run's bias | true change | fails | coverage |", "|---|---|---|---|---|",
            *[f"| {r['strategy']} | {r['reference']:g}x | {_f3(r['true_change'])} | {_f(r['claimed'])} | {_f(r['coverage'])} |"
              for r in rows]]


def debiasing_table(rows: list[dict]) -> list[str]:
    return ["", "Debiasing gate (`debiasing_no_increase`, fails when the lower end of the paired change's interval is "
            "above 0): the reference condition answered by a model at the reference bias (a multiple of the bias gate's "
            "threshold, low noise), the strategy's condition by a strategy that changes nothing, only adds noise (twins "
            "disagreeing as at the high noise level, same true bias) or raises the bias to 1.5x the threshold. "
            "*fails*: share of runs the gate fails (target: <= 0.05 for the first two, >= 0.90 for the third); "
            "*coverage*: of the true change where the simulator knows it (WinoBias: theta^2 after minus before).", "",
            "| strategy | reference bias | seeds | true change | fails | coverage |", "|---|---|---|---|---|---|",
            *[f"| {r['strategy']} | {r['reference']:g}x | {r['seeds']} | {_f3(r['true_change'])} "
              f"| {_f(r['claimed'])} | {_f(r['coverage'])} |" for r in rows]]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", choices=PRESETS)
    ap.add_argument("--design", choices=DESIGNS, default="official",
                    help="official-all: both official WinoBias splits (split = all), the WinoBias presets only")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--noise", action="append", help="only these noise levels (low, high)")
    ap.add_argument("--seeds", type=int, action="append", help="only the conditions with this many seeds")
    ap.add_argument("--part", choices=("all", "bias", "transfer", "changes"), default="all",
                    help="the bias gates, the transfer gate, both (all), or the gates comparing two runs (debiasing, regression)")
    ap.add_argument("--multiple", type=float, action="append",
                    help="only these planted multiples of each threshold (default 0.5, 0.9, 1.5, 2)")
    ap.add_argument("--reference", type=float, action="append",
                    help="changes: only these reference biases (multiples of the bias gate's threshold; default 0 and 0.5)")
    ap.add_argument("--plant", choices=("smallest", "every"), default="smallest",
                    help="BBQ and CrowS-Pairs: plant a bias in the smallest category or bias type only (the worst case) or in every one (the typical case)")
    ap.add_argument("--whole-verdict", action="store_true",
                    help="the verdict over every condition and gate of the preset, under each correction (benchmarks/whole_verdict.py)")
    ap.add_argument("--shared", type=float, default=0.0,
                    help="--whole-verdict: chance a condition's answer is the model's run-wide one (0: independent conditions)")
    ap.add_argument("--kind", action="append", choices=("fair", "compliant", "power"), help="--whole-verdict: only these models")
    ap.add_argument("--power-model", action="append", help="--whole-verdict: only these power models (GATE:every, GATE:one)")
    ap.add_argument("--render", action="store_true", help="write docs/calibration.md from the stored parts")
    ap.add_argument("--out", default=str(ROOT / "docs" / "calibration.md"))
    args = ap.parse_args()
    if args.preset and args.whole_verdict:
        import shlex

        import whole_verdict as wv

        session = build_session(AuditOptions(preset=args.preset, data=data_for(args.preset, args.design), no_cache=True,
                                             split=SPLIT_OF_DESIGN.get(args.design)))
        noise = (args.noise or ["high"])[0]
        wv.VERDICT_PARTS.mkdir(parents=True, exist_ok=True)
        path = wv.VERDICT_PARTS / (f"{args.preset}--{args.design}--{noise}--shared{args.shared:g}"
                                   + "".join(f"--{k}" for k in args.kind or [])
                                   + "".join(f"--{m.replace(':', '-')}" for m in args.power_model or []) + f"--seed{args.seed}.json")
        command = "PYTHONPATH=$PWD nice -n 10 python benchmarks/calibration.py " + shlex.join(sys.argv[1:])

        def store(part: dict) -> None:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({**part, "command": command}, indent=1, default=float))
            tmp.replace(path)  # whole: a render never reads a half-written part

        store(wv.measure(session, args.preset, args.design, runs=args.runs, seed=args.seed, noise=noise, shared=args.shared,
                         kinds=tuple(args.kind or wv.KINDS), power_models=tuple(args.power_model or ()), store=store))
        print(f"wrote {path}")
    elif args.preset:
        part = measure(args.preset, args.design, args.runs, args.seed, args.noise, args.seeds, args.part, args.plant,
                       tuple(args.reference or REFERENCE_MULTIPLES), tuple(args.multiple or cal.MULTIPLES))
        PARTS.mkdir(parents=True, exist_ok=True)
        suffix = ("".join(f"--{k}seeds" for k in args.seeds or []) + ("" if args.part == "all" else f"--{args.part}")
                  + ("" if args.plant == "smallest" else f"--{args.plant}"))
        path = PARTS / f"{args.preset}--{args.design}{suffix}.json"
        part["options"] = ("".join(f" --noise {n}" for n in args.noise or []) + "".join(f" --seeds {k}" for k in args.seeds or [])
                           + ("" if args.part == "all" else f" --part {args.part}")
                           + ("" if args.plant == "smallest" else f" --plant {args.plant}")
                           + "".join(f" --reference {r:g}" for r in args.reference or [])
                           + "".join(f" --multiple {m:g}" for m in args.multiple or []))
        path.write_text(json.dumps(part, indent=1, default=float))
        print(f"wrote {path}")
    if args.render:
        from interval_coverage import table as coverage_table, transfer_section

        parts = [with_pooled(json.loads(p.read_text())) for p in sorted(PARTS.glob("*.json"))]
        coverage = [json.loads(p.read_text()) for p in sorted(PARTS.parent.glob("coverage--*.json"))]
        text = render(parts)
        if coverage:
            text += "\n".join(["", "## Coverage with many runs (WinoBias bias gates)", "",
                               "The tables above take the lowest coverage over five models of 8-30 runs each, which is "
                               "biased low; here each model has 250 runs (150 in the last table; binomial SE about 0.014 at 0.95, 0.018 at 150), with the "
                               "same simulated answers at 95% and at 90%.", ""]
                              + [line for part in coverage for line in [*coverage_table(part), ""]])
        text += "\n".join(transfer_section())
        import whole_verdict as wv

        text += "\n".join(wv.render([json.loads(p.read_text()) for p in sorted(wv.VERDICT_PARTS.glob("*.json"))]))
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
