"""The whole verdict of a preset, measured by simulation: every condition of the config answered by a
simulated model of known truth, every gate decided in every condition it covers, and the verdict read as
``bias-audit run`` reads it (``AuditSession.gate`` -> ``audit.gates.decide`` -> ``audit.run.coverage.verdict``).

``calibrate`` (``audit.run.calibrate``) simulates one condition per seed count, which says how each gate
decides; this module says how often the verdict over all C conditions x G gates is wrong, the family-wise
error a correction (``correction`` in the config) must bound.

* **models**: fair; every bias gate at ``multiple`` x its threshold at once (the simulator's ``jointly``);
  one gate planted at ``multiple`` x its threshold (``planted``). ``where``: the same truth in every
  condition, or the planted model in one condition only and the fair model in the others.
* **shared** (cross-condition dependence): each condition's first-seed answer to an item is the model's
  run-wide answer to it with probability ``shared``, else drawn afresh (the marginal law of every answer
  stays the model's). 0: independent noise in every condition, the worst case for a verdict without
  correction; near 1: the conditions answer alike, so their errors coincide. Seeds within a condition
  keep the first seed's answer with probability ``persist``, as in ``calibrate``.
* **corrections**: the same simulated answers are decided under each correction. A correction only ever
  turns a fail into inconclusive, so a run with no fail uncorrected has the same verdict under all of them.
* The ``transfer`` gate is not decided unless the verdict is still open at the end: it applies only when
  the bare model's bias gate fails (a fail of the verdict already), else it passes as not applicable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy import stats

from audit.errors import AuditError
from audit.gates import gate_spec
from audit.run.calibrate import SIMULATED, SimulatedSession, seeded_answers
from audit.run.coverage import required_gates, verdict

CORRECTIONS = ("none", "holm", "holm_verdict", "two_step_verdict")
KINDS = ("fair", "compliant", "power")  # the models ``models_for`` builds
COMPLETE = {"complete": True, "gates_replaced": {}}  # a simulated suite decides every required gate


@dataclass
class SharedSession(SimulatedSession):
    """A ``SimulatedSession`` whose conditions share each model's run-wide answers with probability ``shared``."""

    shared: float = 0.0
    base_answers: dict = field(default_factory=dict)  # id(model) -> its run-wide answers

    def answers(self, model, seeds: int) -> list:
        """The first seed keeps the run-wide answer to each item with probability ``shared``, else answers
        afresh; later seeds keep the first seed's answer with probability ``persist``."""
        if self.shared <= 0:
            return super().answers(model, seeds)
        rng = self.sim_rng
        base = self.base_answers.setdefault(id(model), model.answer(rng))
        fresh, keep = model.answer(rng), rng.random(len(base)) < self.shared
        first = [b if k else f for b, f, k in zip(base, fresh, keep)]
        return seeded_answers(model, seeds, self.persist, rng, first=first)


@dataclass
class VerdictTally:
    """Verdicts of one simulated model under one correction, and in how many runs each gate failed somewhere."""

    runs: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)
    gate_fails: dict[str, int] = field(default_factory=dict)

    def add(self, result: str, failed_gates: set[str]) -> None:
        self.runs += 1
        self.verdicts[result] = self.verdicts.get(result, 0) + 1
        for g in failed_gates:
            self.gate_fails[g] = self.gate_fails.get(g, 0) + 1

    def rate(self, result: str) -> float:
        return self.verdicts.get(result, 0) / self.runs if self.runs else math.nan

    def to_dict(self) -> dict:
        return {"runs": self.runs, **{v: self.rate(v) for v in ("fail", "inconclusive", "pass")},
                "fail_upper_95": upper_bound(self.verdicts.get("fail", 0), self.runs),
                "gate_fails": {g: n / self.runs for g, n in sorted(self.gate_fails.items())}}


def upper_bound(k: int, n: int, level: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound of a rate seen k times in n runs."""
    return float(stats.beta.ppf(level, k + 1, n - k)) if n and k < n else 1.0


@dataclass
class WholeModel:
    label: str  # e.g. "every bias gate at 0.9x"
    where: str  # "every condition" | "one condition (NAME)"
    truth: dict[str, float]
    model: object
    conditions: dict = field(default_factory=dict)  # condition -> model answering it instead (the others: fair)
    tallies: dict[str, VerdictTally] = field(default_factory=dict)  # correction -> tally


def one_condition(config) -> str:
    """The condition a bias confined to one condition sits in: the debiasing reference (the plain prompt)."""
    return config.debiasing_reference if config.debiasing_reference in config.conditions else list(config.conditions)[-1]


def models_for(session, simulator, noise: str, kinds=KINDS, compliant: float = 0.9, power: float = 1.5,
               power_models: tuple[str, ...] = ()) -> list[WholeModel]:
    """``power_models``: only these power models, named GATE:every or GATE:one (default all)."""
    cfg, out = session.config, []
    fair = simulator.fair(noise)
    where_one = one_condition(cfg)
    gated = [g for g in simulator.gates if g in cfg.gates and cfg.gates[g].enabled]
    if "fair" in kinds:
        out.append(WholeModel("fair", "every condition", dict(fair.truth), fair))
    if "compliant" in kinds:
        values = {g: compliant * cfg.gates[g].threshold for g in gated}  # a joint simulator plants what it can; the rest follow
        if hasattr(simulator, "jointly"):
            m = simulator.jointly(values, noise)
            out.append(WholeModel(f"every bias gate at {compliant:g}x", "every condition", dict(m.truth), m))
        else:  # one gate at a time (the others follow the simulator's profile)
            for g, v in values.items():
                m = simulator.planted(g, v, noise)
                out.append(WholeModel(f"{g} at {compliant:g}x", "every condition", dict(m.truth), m))
    if "power" in kinds:
        for g in gated:
            try:
                m = simulator.planted(g, power * cfg.gates[g].threshold, noise)
            except ValueError:  # out of reach at the simulated accuracy (e.g. one unit leaning by more than it can)
                continue
            if not power_models or f"{g}:every" in power_models:
                out.append(WholeModel(f"{g} at {power:g}x", "every condition", dict(m.truth), m))
            if not power_models or f"{g}:one" in power_models:
                out.append(WholeModel(f"{g} at {power:g}x", f"one condition ({where_one}; fair elsewhere)", dict(m.truth),
                                      fair, conditions={where_one: m}))
    return out


def decision_plan(session) -> list[tuple[str, list[str]]]:
    """Every gate the run requires with the conditions it covers, in config order (transfer last)."""
    gates = required_gates(session)
    gates = [g for g in gates if not gate_spec(g).conditional] + [g for g in gates if gate_spec(g).conditional]
    return [(g, session.config.condition_names_for(g)) for g in gates]


def decide_verdict(sim: SimulatedSession, plan: Sequence[tuple[str, list[str]]]) -> tuple[str, set[str]]:
    """The verdict of one simulated run as ``bias-audit run`` reads it (stopping at the first fail, which
    settles it), and the gates that failed."""
    for gate, conditions in plan:
        if gate_spec(gate).conditional:
            continue  # a fail here needs a fail of the bare model's bias gate, which ended the loop already
        for condition in conditions:
            if sim.gate(gate, SIMULATED, condition).status == "fail":
                return verdict(sim, COMPLETE), {gate}
    return verdict(sim, COMPLETE), set()


def _redecide(sim: SimulatedSession, config) -> None:
    """The same simulated answers, to be decided afresh under ``config`` (another correction)."""
    sim.config, sim._outcomes, sim.outcomes = config, {}, []


def whole_verdict(session, models: Sequence[WholeModel], *, runs: int, seed: int, shared: float = 0.0,
                  persist: float = 0.8, corrections: Sequence[str] = CORRECTIONS, progress=None,
                  after_run=None) -> list[WholeModel]:
    """Each model's verdict over ``runs`` simulated audits of every condition of the session's config, under
    each correction (the same answers decided under each); fills ``model.tallies``. ``progress(model)`` after
    each model, ``after_run(models)`` after each run (e.g. to store what is measured so far)."""
    if not 0 <= shared <= 1:
        raise AuditError(f"calibrate: shared must be in [0, 1], not {shared}")
    plan = decision_plan(session)
    corrections = sorted(corrections, key=lambda c: c != "none")  # uncorrected first: its verdict may settle the others
    configs = {c: session.config.model_copy(update={"correction": c}) for c in corrections}
    for k_model, wm in enumerate(models):
        rng = np.random.default_rng([seed, 7, k_model])
        wm.tallies = {c: VerdictTally() for c in corrections}
        for _ in range(runs):
            sim = SharedSession(configs[corrections[0]], [SIMULATED], dataset=session.dataset, items=session.items,
                                pool=session.pool, use_cache=False, sim_model=wm.model, sim_rng=rng, persist=persist,
                                condition_models=dict(wm.conditions), shared=shared)
            results = {}
            for correction in corrections:
                if correction != "none" and results.get("none", ("fail",))[0] != "fail":
                    results[correction] = results["none"]  # a correction only withdraws fails
                    continue
                _redecide(sim, configs[correction])
                results[correction] = decide_verdict(sim, plan)
            for correction, (result, failed) in results.items():
                wm.tallies[correction].add(result, failed)
            if after_run is not None:
                after_run(models)
        if progress is not None:
            progress(wm)
    return models
