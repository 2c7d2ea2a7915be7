"""The whole verdict of a shipped preset over all its conditions and gates (``audit.run.calibrate_verdict``),
for ``benchmarks/calibration.py --whole-verdict``: the fair model's verdict, the family-wise fail rate of a
model with every bias gate at 0.9x its threshold in every condition, and the power at 1.5x (planted in every
condition, or in one), under each correction (``none``, ``holm``, ``holm_verdict``), on the same simulated
answers. Parts are stored in benchmarks/results/calibration/verdict/ and rendered into docs/calibration.md.
"""

from __future__ import annotations

import time
from pathlib import Path

from audit.gates import gate_spec
from audit.run.calibrate_verdict import CORRECTIONS, KINDS, WholeModel, decision_plan, models_for, upper_bound, whole_verdict

VERDICT_PARTS = Path(__file__).resolve().parent / "results" / "calibration" / "verdict"
_BBQ_LIMIT = ("BBQ bias limits 0.20, as the presets ship since session 14 (the parts measured at 0.10 before are in "
              "`benchmarks/results/calibration/limit0.10/verdict`). The 1.5x bias is planted in the smallest category, "
              "Sexual_orientation (788 of 10,860 items).")
NOTES = {  # (preset, design, shared) -> what the commands alone do not say
    ("study", "official-all", 0.0): "Both official splits (`--split all`), as the WinoBias presets audit since session 8. The "
    "processes of seeds 57-60 and 72 were stopped early to free the CPU for the test suite; each part holds the runs it "
    "completed (every run is stored whole), and *runs* counts them.",
    ("default", "official-all", 0.0): "Both official splits (`--split all`), as the WinoBias presets audit since session 8.",
    ("default", "official-all", 0.8): "Both official splits (`--split all`), as the WinoBias presets audit since session 8.",
    ("bbq", "official", 0.0): _BBQ_LIMIT,
    ("paper-b", "official", 0.0): _BBQ_LIMIT,
}


def measure(session, preset: str, design: str, *, runs: int, seed: int, noise: str, shared: float, kinds=KINDS,
            power_models: tuple[str, ...] = (), store=None) -> dict:
    """The part's figures; ``store(part)`` is also called after every run with the runs so far (a part survives
    a process stopped early)."""
    simulator = session.dataset.simulator(session.items, session.config)
    models = models_for(session, simulator, noise, kinds, power_models=power_models)
    start = time.perf_counter()
    cfg = session.config
    plan = decision_plan(session)

    def part(done: list[WholeModel]) -> dict:
        return {"preset": preset, "design": design, "items": len(session.items), "runs": runs, "seed": seed, "noise": noise,
                "noise_level": simulator.noise_levels[noise], "shared": shared, "conditions": len(cfg.conditions),
                "decisions": sum(len(c) for g, c in plan if not gate_spec(g).conditional),
                "shipped_correction": cfg.correction, "seconds": time.perf_counter() - start,
                "models": [{"label": m.label, "where": m.where, "truth": m.truth,
                            "tallies": {c: t.to_dict() for c, t in m.tallies.items()}}
                           for m in done if m.tallies and next(iter(m.tallies.values())).runs]}

    whole_verdict(session, models, runs=runs, seed=seed, shared=shared,
                  progress=lambda m: print(f"{m.label}, {m.where}: " + "; ".join(
                      f"{c} {t.to_dict()['fail']:.2f}/{t.to_dict()['inconclusive']:.2f}/{t.to_dict()['pass']:.2f}"
                      for c, t in m.tallies.items()), flush=True),
                  after_run=(lambda done: store(part(done))) if store else None)
    return part(models)


def merge(parts: list[dict]) -> list[dict]:
    """Parts of one preset, design, noise and sharing measured in several seeded processes (each with its own
    models), as one: a model's tallies are pooled over the parts that measured it (rates weighted by runs)."""
    groups: dict[tuple, dict] = {}
    for p in sorted(parts, key=lambda p: p["seed"]):
        key = (p["preset"], p["design"], p["noise"], p["shared"])
        g = groups.setdefault(key, {**p, "models": [], "commands": [], "seconds": 0.0})
        g["commands"].append(p["command"])
        g["seconds"] = max(g["seconds"], p["seconds"])
        for m in p["models"]:
            into = next((x for x in g["models"] if (x["label"], x["where"]) == (m["label"], m["where"])), None)
            if into is None:
                g["models"].append({**m, "tallies": {c: dict(t) for c, t in m["tallies"].items()}})
                continue
            for c, t in m["tallies"].items():
                a = into["tallies"].get(c)
                if a is None:  # a correction added after the earlier parts were measured: its own runs only
                    into["tallies"][c] = {**t, "gate_fails": dict(t["gate_fails"])}
                    continue
                n = a["runs"] + t["runs"]
                for k in ("fail", "inconclusive", "pass"):
                    a[k] = (a[k] * a["runs"] + t[k] * t["runs"]) / n
                a["gate_fails"] = {gate: (a["gate_fails"].get(gate, 0) * a["runs"] + t["gate_fails"].get(gate, 0) * t["runs"]) / n
                                   for gate in {*a["gate_fails"], *t["gate_fails"]}}
                a["runs"] = n
                a["fail_upper_95"] = upper_bound(round(a["fail"] * n), n)
    order = {"fair": 0, "every": 1}
    for g in groups.values():
        g["models"].sort(key=lambda m: (order.get(m["label"].split()[0], 2), m["label"], m["where"]))
    return list(groups.values())


def render(parts: list[dict]) -> list[str]:
    if not parts:
        return []
    parts = merge(parts)
    lines = ["", "## The whole verdict over every condition and gate", "",
             "`benchmarks/calibration.py --whole-verdict` (`audit.run.calibrate_verdict`): every condition of the preset "
             "answered by the simulated model, every gate decided in every condition it covers through "
             "`AuditSession.gate` and the verdict read by `audit.run.coverage.verdict`, as `bias-audit run` does; the same "
             "answers decided under each correction. *shared*: the chance that a condition's answer to an item is the "
             "model's run-wide answer (0: independent noise per condition, the worst case for an uncorrected verdict). "
             "*every bias gate at 0.9x* (WinoBias): theta 0.9x the a_sb threshold and |RPA gap| 0.9x the rpa_gap threshold at "
             "once (worst |O-SB| follows, well within its 0.5); BBQ plants one score at 0.9x, the other follows (*truth*). "
             "*one condition*: planted in the debiasing reference (zero_shot), the fair model answering the others. "
             "The presets ship `none` (default, bbq, crows-pairs) or `two_step_verdict` (study, paper-b; `holm_verdict` before session 9); docs/statistics.md, "
             "\"What the whole verdict guarantees\", states each one's guarantee. *fail (95% upper)*: the fail rate and its one-sided "
             "Clopper-Pearson 95% upper bound. Rates are fail / inconclusive / pass.", ""]
    for p in parts:
        note = NOTES.get((p["preset"], p["design"], p["shared"]))
        lines += [f"### {p['preset']} preset, {p['design']} ({p['items']:,} items, {p['conditions']} conditions, "
                  f"{p['decisions']} gate-condition decisions), {p['noise']} noise, shared {p['shared']:g}", "",
                  *([note, ""] if note else []), *[f"    {c}" for c in p["commands"]], "",
                  f"(The longest of these processes, run side by side on 2 CPU cores shared with other work: "
                  f"{p['seconds']:.0f} s.) Noise: {p['noise_level']}.", "",
                  "| model | where | runs | truth (in the planted condition) | " + " | ".join(f"{c}: fail (95% upper) | {c}: f / i / p" for c in CORRECTIONS) + " |",
                  "|---|---|---|---|" + "---|---|" * len(CORRECTIONS)]
        for m in p["models"]:
            t = m["truth"]
            runs = m["tallies"]["none"]["runs"]
            cells = []
            for c in CORRECTIONS:
                d = m["tallies"].get(c)
                if d is None:
                    cells += ["n/a", "n/a"]
                    continue
                own = "" if d["runs"] == runs else f" ({d['runs']} runs)"  # a correction not decided in every part
                cells += [f"{d['fail']:.2f} ({d['fail_upper_95']:.2f})",
                          f"{d['fail']:.2f} / {d['inconclusive']:.2f} / {d['pass']:.2f}{own}"]
            truth = ", ".join(f"{g} {v:.3f}" for g, v in t.items())
            lines.append(f"| {m['label']} | {m['where']} | {runs} | {truth} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines
