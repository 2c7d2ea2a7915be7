"""The gates that compare two runs, on simulated changes of known effect (``bias-audit calibrate``'s engine,
beside ``audit.run.calibrate``), through ``AuditSession.evaluate``:

* ``debiasing_no_increase``: the reference condition (``debiasing_reference``) is answered by one simulated
  model and a debiasing strategy's condition by another;
* ``a_sb_regression``: an approved run (``--approved``) answered by one model, the new run by another.

Changes, at each reference bias (fair; 0.5x the bias gate's threshold):

* *unchanged*: the strategy answers as the reference model does (independent draws): true change 0;
* *noise only*: the same true bias, twins disagreeing more (the simulator's ``high`` noise against the
  reference's ``low``): true change 0; the papers' A-SB would rise with the added noise;
* *to 1.5x*: the strategy raises the bias to 1.5x the bias gate's threshold (a true increase).

A fail claims an increase: its rate is the false-fail rate of the first two, the power of the third. The
truth (``theta^2`` after minus before: WinoBias from the models, BBQ from the choosers' expected picks) is
what the interval's coverage is checked against.
The two conditions' answers are drawn independently of each other (no item-level persistence between
conditions, which a paired interval would only make narrower)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from audit.run.calibrate import SIMULATED, Cell, Tally, representative_conditions, simulated_session
from audit.run.session import AuditSession

GATE = "debiasing_no_increase"
BIAS_GATE = {"winobias": "a_sb", "bbq": "bbq_s_amb"}  # the bias gate whose threshold scales the planted bias
REFERENCE_MULTIPLES = (0.0, 0.5)
INCREASE_TO = 1.5


def strategies(simulator, bias_gate: str, threshold: float, references: Sequence[float] = REFERENCE_MULTIPLES
               ) -> list[tuple[str, float, object, object]]:
    """(name, reference multiple, reference model, strategy model) for every simulated strategy."""
    def model(multiple: float, noise: str):
        return simulator.fair(noise) if multiple == 0 else simulator.planted(bias_gate, multiple * threshold, noise)

    out = []
    for ref in references:
        base = model(ref, "low")
        out += [("unchanged", ref, base, base), ("noise only", ref, base, model(ref, "high")),
                (f"to {INCREASE_TO:g}x", ref, base, model(INCREASE_TO, "low"))]
    return out


def true_change(items: Sequence, reference, strategy, bias_gate: str) -> float:
    """The gate's estimand after minus before: WinoBias theta^2 from the models' truths; BBQ theta^2 of the
    per-template selection bias from the choosers' expected picks (``audit.datasets.bbq.debiasing``)."""
    if bias_gate == "a_sb":
        return strategy.truth["a_sb"] ** 2 - reference.truth["a_sb"] ** 2
    if hasattr(strategy, "probs"):
        from audit.datasets.bbq.debiasing import true_theta2

        return true_theta2(items, strategy.probs) - true_theta2(items, reference.probs)
    return math.nan


def calibrate_debiasing(session: AuditSession, *, runs: int, seed: int, persist: float = 0.8,
                        seed_counts: Sequence[int] | None = None, references: Sequence[float] = REFERENCE_MULTIPLES,
                        progress=None, simulator=None) -> list[Cell]:
    """Every simulated strategy ``runs`` times per seed count of the strategy conditions; [] when the config has
    no debiasing gate or strategy condition, or the dataset no simulator."""
    cfg = session.config
    simulator = simulator or session.dataset.simulator(session.items, cfg)
    bias_gate = BIAS_GATE.get(session.dataset.name)
    if simulator is None or bias_gate not in cfg.gates or session.gate_inapplicable(GATE) is not None:
        return []
    designs = {k: c for k, c in representative_conditions(cfg, [GATE]).items() if not seed_counts or k in seed_counts}
    cells = []
    for k_strategy, (name, ref_multiple, reference, strategy) in enumerate(strategies(simulator, bias_gate, cfg.gates[bias_gate].threshold, references)):
        truth = true_change(session.items, reference, strategy, bias_gate)
        for seeds, condition in designs.items():
            rng = np.random.default_rng([seed, 200 + k_strategy, seeds])
            tally, verdict = Tally(), {}
            for _ in range(runs):
                sim = simulated_session(session, strategy, rng, persist, {cfg.debiasing_reference: reference})
                out = sim.evaluate(GATE, SIMULATED, condition)
                tally.add(out.status, out.ci, truth)
                verdict[out.status] = verdict.get(out.status, 0) + 1
            cells.append(Cell("low", seeds, condition, name, ref_multiple, {GATE: truth}, {GATE: tally}, verdict))
            if progress is not None:
                progress(cells[-1])
    return cells


def debiasing_rows(cells: Sequence[Cell]) -> list[dict]:
    """Per strategy, reference bias and seed count: the share of runs failing the gate (claiming an increase)."""
    return change_rows(cells, GATE)


REGRESSION = "a_sb_regression"


def approved_run(session: AuditSession, model_answers: dict[str, list]) -> dict:
    """An approved results.json as ``--approved`` reads it (``audit.stats.regression.approved_condition``):
    each condition's choices by item id."""
    ds = session.dataset
    return {"models": [{"name": SIMULATED, "conditions": {c: {} for c in model_answers},
                        "choices": {c: [{"item": ds.item_id(it), "selected": s} for it, s in zip(session.items, answers)]
                                    for c, answers in model_answers.items()}}]}


def calibrate_regression(session: AuditSession, *, runs: int, seed: int, references: Sequence[float] = REFERENCE_MULTIPLES,
                         progress=None) -> list[Cell]:
    """``a_sb_regression`` on simulated changes (one answer per item: the conditions of one seed); [] when the
    config has no such gate or the dataset no simulator of it."""
    cfg = session.config
    simulator = session.dataset.simulator(session.items, cfg)
    if simulator is None or REGRESSION not in cfg.gates or not cfg.gates[REGRESSION].enabled or "a_sb" not in cfg.gates \
            or session.dataset.name != "winobias":
        return []
    designs = {k: c for k, c in representative_conditions(cfg, [REGRESSION]).items() if k == 1}
    cells = []
    for k_change, (name, ref_multiple, approved, current) in enumerate(strategies(simulator, "a_sb", cfg.gates["a_sb"].threshold, references)):
        truth = true_change(session.items, approved, current, "a_sb")
        for seeds, condition in designs.items():
            rng = np.random.default_rng([seed, 300 + k_change, seeds])
            tally, verdict = Tally(), {}
            for _ in range(runs):
                sim = simulated_session(session, current, rng, 0.8)
                sim.approved = approved_run(session, {condition: approved.answer(rng)})
                out = sim.evaluate(REGRESSION, SIMULATED, condition)
                tally.add(out.status, out.ci, truth)
                verdict[out.status] = verdict.get(out.status, 0) + 1
            cells.append(Cell("low", seeds, condition, name, ref_multiple, {REGRESSION: truth}, {REGRESSION: tally}, verdict))
            if progress is not None:
                progress(cells[-1])
    return cells


def change_rows(cells: Sequence[Cell], gate: str) -> list[dict]:
    """``debiasing_rows`` for either gate."""
    return [{"strategy": c.planted_gate, "reference": c.multiple, "seeds": c.seeds, "true_change": c.truth[gate],
             "claimed": c.tallies[gate].rate("fail"), **{k: v for k, v in c.tallies[gate].to_dict().items()
                                                        if k in ("coverage", "with_interval", "n")}}
            for c in cells]
