"""The gates that compare two runs, on simulated changes of known effect (``bias-audit calibrate``'s engine,
beside ``audit.run.calibrate``), through ``AuditSession.evaluate``:

* ``debiasing_no_increase``: the reference condition (``debiasing_reference``) is answered by one simulated
  model and a debiasing strategy's condition by another;
* the bias gate's regression gate (``<bias gate>_regression``): an approved run (``--approved``) answered by
  one model, the new run by another.

Changes, at each reference bias (fair; 0.5x the threshold of the dataset's bias gate, ``Dataset.bias_gate``):

* *unchanged*: the strategy answers as the reference model does (independent draws): true change 0;
* *noise only*: the same true bias, answered more noisily (the simulator's ``high`` noise against the
  reference's ``low``): true change 0; a mean absolute bias would rise with the added noise;
* *to 1.5x*: the strategy raises the bias to 1.5x the bias gate's threshold (a true increase).

A fail claims an increase: its rate is the false-fail rate of the first two, the power of the third. The
true change of the compared estimand (the simulator's ``true_change``; NaN where it has none) is what the
interval's coverage is checked against.
The two conditions' answers are drawn independently of each other (no item-level persistence between
conditions, which a paired interval would only make narrower)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from audit.run.calibrate import SIMULATED, Cell, Tally, representative_conditions, simulated_session
from audit.run.session import AuditSession

GATE = "debiasing_no_increase"
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


def true_change(simulator, reference, strategy) -> float:
    """The compared estimand after minus before, as the simulator knows it (``Simulator.true_change``), else NaN."""
    known = getattr(simulator, "true_change", None)
    return math.nan if known is None else float(known(reference, strategy))


def calibrate_debiasing(session: AuditSession, *, runs: int, seed: int, persist: float = 0.8,
                        seed_counts: Sequence[int] | None = None, references: Sequence[float] = REFERENCE_MULTIPLES,
                        progress=None, simulator=None) -> list[Cell]:
    """Every simulated strategy ``runs`` times per seed count of the strategy conditions; [] when the config has
    no debiasing gate or strategy condition, or the dataset no simulator."""
    cfg = session.config
    simulator = simulator or session.dataset.simulator(session.items, cfg)
    bias_gate = session.dataset.bias_gate
    if simulator is None or bias_gate not in cfg.gates or session.gate_inapplicable(GATE) is not None:
        return []
    designs = {k: c for k, c in representative_conditions(cfg, [GATE]).items() if not seed_counts or k in seed_counts}
    def one_run(reference, strategy, condition, rng):
        sim = simulated_session(session, strategy, rng, persist, {cfg.debiasing_reference: reference})
        return sim.evaluate(GATE, SIMULATED, condition)

    changes = strategies(simulator, bias_gate, cfg.gates[bias_gate].threshold, references)
    return _change_cells(simulator, changes, designs, GATE, runs, (seed, 200), one_run, progress)


def _change_cells(simulator, changes, designs: dict, gate: str, runs: int, stream: tuple[int, int], one_run,
                  progress) -> list[Cell]:
    """``runs`` simulated decisions of ``gate`` per (before, after) change and design; ``one_run(before, after,
    condition, rng)`` gives one outcome; each cell's rng stream is (seed, offset + change index, seeds)."""
    cells = []
    for k, (name, ref_multiple, before, after) in enumerate(changes):
        truth = true_change(simulator, before, after)
        for seeds, condition in designs.items():
            rng = np.random.default_rng([stream[0], stream[1] + k, seeds])
            tally, verdict = Tally(), {}
            for _ in range(runs):
                out = one_run(before, after, condition, rng)
                tally.add(out.status, out.ci, truth)
                verdict[out.status] = verdict.get(out.status, 0) + 1
            cells.append(Cell("low", seeds, condition, name, ref_multiple, {gate: truth}, {gate: tally}, verdict))
            if progress is not None:
                progress(cells[-1])
    return cells


def debiasing_rows(cells: Sequence[Cell]) -> list[dict]:
    """Per strategy, reference bias and seed count: the share of runs failing the gate (claiming an increase)."""
    return change_rows(cells, GATE)


def regression_gate(session: AuditSession) -> str:
    """The regression gate of the dataset's bias gate (``<bias_gate>_regression``)."""
    return f"{session.dataset.bias_gate}_regression"


def approved_run(session: AuditSession, model_answers: dict[str, list]) -> dict:
    """An approved results.json as ``--approved`` reads it (``audit.stats.regression.approved_condition``):
    each condition's choices by item id."""
    ds = session.dataset
    return {"models": [{"name": SIMULATED, "conditions": {c: {} for c in model_answers},
                        "choices": {c: [{"item": ds.item_id(it), "selected": s} for it, s in zip(session.items, answers)]
                                    for c, answers in model_answers.items()}}]}


def calibrate_regression(session: AuditSession, *, runs: int, seed: int, references: Sequence[float] = REFERENCE_MULTIPLES,
                         progress=None) -> list[Cell]:
    """The regression gate of the dataset's bias gate on simulated changes (one answer per item: the conditions
    of one seed); [] when the config has no such gate or the dataset no simulator."""
    cfg = session.config
    simulator = session.dataset.simulator(session.items, cfg)
    gate, bias_gate = regression_gate(session), session.dataset.bias_gate
    if simulator is None or gate not in cfg.gates or bias_gate not in cfg.gates or session.gate_inapplicable(gate) not in (
            None, "no approved run given (--approved RESULTS_JSON)"):
        return []
    designs = {k: c for k, c in representative_conditions(cfg, [gate]).items() if k == 1}
    def one_run(approved, current, condition, rng):
        sim = simulated_session(session, current, rng, 0.8)
        sim.approved = approved_run(session, {condition: approved.answer(rng)})
        return sim.evaluate(gate, SIMULATED, condition)

    changes = strategies(simulator, bias_gate, cfg.gates[bias_gate].threshold, references)
    return _change_cells(simulator, changes, designs, gate, runs, (seed, 300), one_run, progress)


def change_rows(cells: Sequence[Cell], gate: str) -> list[dict]:
    """``debiasing_rows`` for either gate."""
    return [{"strategy": c.planted_gate, "reference": c.multiple, "seeds": c.seeds, "true_change": c.truth[gate],
             "claimed": c.tallies[gate].rate("fail"), **{k: v for k, v in c.tallies[gate].to_dict().items()
                                                        if k in ("coverage", "with_interval", "n")}}
            for c in cells]
