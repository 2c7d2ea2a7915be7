"""``bias-audit calibrate``: how the gates of a config decide on its own data, measured by simulation.

Simulated models of known truth (the dataset's simulator, ``Dataset.simulator``) answer the audited
items; their answers go through ``AuditSession.evaluate``, the code path of ``bias-audit run`` (the
dataset's summary, the gates' measures, the decision rule, Holm where configured). Per gate: the fail /
pass / inconclusive rates of a fair model and of models planted at multiples of the gate's threshold,
the coverage of the true value by the gate's interval, and an estimate of the items needed for 80% power.

Each call is decided alone (``correction = "none"``): these are per-call rates; the verdict over every
condition and gate, under the config's correction, is ``audit.run.calibrate_verdict``'s.

A simulated condition differs from another only by its number of seeds (a simulated model answers
every prompt format alike), so one condition per seed count stands for all of them: a multi-seed
condition answers every item once per seed, each later seed keeping the first seed's answer with
probability ``persist`` (answers persisting across shot draws, the hard case for pooling).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import numpy as np
from scipy import stats

from audit.errors import AuditError
from audit.run.conditions import ConditionRun
from audit.run.session import AuditSession

SIMULATED = "simulated"
MULTIPLES = (0.5, 0.9, 1.5, 2.0)  # truths planted, as multiples of the gate's threshold
POWER_TARGET = 0.8
FOLLOWER_SHARE = 0.9  # the bias-following model answers the biased option this often


class SimulatedModel(Protocol):
    """A model of known truth: ``truth`` maps each simulated gate to its true gated value."""

    truth: dict[str, float]

    def answer(self, rng: np.random.Generator) -> list: ...  # one selection per item, independent draws


class Simulator(Protocol):
    """A dataset's simulated models on a list of items (``Dataset.simulator``)."""

    gates: tuple[str, ...]  # the bias gates whose truth it plants (direction "max")
    noise_levels: dict[str, str]  # name -> what it means (e.g. "low": "twin disagreement 0.1")
    planted_where: str  # where a planted bias sits, in words
    planted_items: int  # how many of the items it sits in

    def fair(self, noise: str) -> SimulatedModel: ...

    def planted(self, gate: str, value: float, noise: str) -> SimulatedModel: ...

    def follower(self, share: float, noise: str) -> SimulatedModel: ...  # the biased option in a share of items

    # optional: ``true_change(before, after) -> float``, the true change of the estimand the debiasing and
    # regression gates compare (``audit.run.calibrate_changes``; coverage is not measured without it)


def seeded_answers(model: SimulatedModel, seeds: int, persist: float, rng: np.random.Generator,
                   first: list | None = None) -> list:
    """One condition's answers over ``seeds`` shot draws, in the order ``run_condition`` pools them:
    each later draw keeps the first draw's answer (``first``, else drawn here) with probability ``persist``."""
    first = model.answer(rng) if first is None else first
    out = list(first)
    for _ in range(seeds - 1):
        fresh, keep = model.answer(rng), rng.random(len(first)) < persist
        out += [a if k else b for a, b, k in zip(first, fresh, keep)]
    return out


@dataclass
class SimulatedSession(AuditSession):
    """A session whose model is simulated: a condition's run is drawn on first use (so a correction over
    conditions sees every condition, as in a real run); everything else is ``AuditSession``'s."""

    sim_model: Any = None
    sim_rng: Any = None
    persist: float = 0.8
    condition_models: dict = field(default_factory=dict)  # a condition answered by another model (transfer)

    def run(self, spec: str, condition: str) -> ConditionRun:
        key = (spec, condition)
        if key not in self._runs:
            cond = self.config.conditions[condition]
            seeds, n = len(cond.seeds), len(self.items)
            model = self.condition_models.get(condition, self.sim_model)
            selections = self.answers(model, seeds)
            ds = self.dataset
            self._runs[key] = ConditionRun(
                condition, cond, ds, items=list(self.items) * seeds, selections=selections, scores=[None] * len(selections),
                outputs=[None] * len(selections), seeds=list(cond.seeds),
                per_seed=[ds.per_seed(self.items, selections[k * n:(k + 1) * n]) for k in range(seeds)])
        return self._runs[key]


    def answers(self, model: SimulatedModel, seeds: int) -> list:
        """One condition's answers over its seeds (``seeded_answers``)."""
        return seeded_answers(model, seeds, self.persist, self.sim_rng)


def simulated_session(base: AuditSession, model: SimulatedModel, rng: np.random.Generator, persist: float,
                      condition_models: dict | None = None) -> SimulatedSession:
    """A session deciding each call alone (``correction = "none"``): the per-gate rates are those of one call;
    what the config's correction does to the verdict over all its conditions and gates is measured by
    ``audit.run.calibrate_verdict`` (a corrected fail would need every condition simulated, on every run)."""
    return SimulatedSession(base.config.model_copy(update={"correction": "none"}), [SIMULATED], dataset=base.dataset, items=base.items, pool=base.pool,
                            use_cache=False, sim_model=model, sim_rng=rng, persist=persist,
                            condition_models=condition_models or {})


@dataclass
class Tally:
    """Verdicts of one gate under one simulated model and seed count."""

    n: int = 0
    status: dict[str, int] = field(default_factory=dict)
    covered: int = 0
    with_interval: int = 0  # runs whose gate gave an interval, with a known truth (coverage is over these)
    half_widths: list[float] = field(default_factory=list)

    def add(self, status: str, ci: tuple, truth: float, estimate: float | None = None) -> None:
        """``half_widths`` holds the reach of the lower end (estimate - lo), the side a fail needs, when the
        estimate is given (an interval may be asymmetric, e.g. a worst-unit bound with a simultaneous lower end
        and a marginal upper one), else half the width."""
        self.n += 1
        self.status[status] = self.status.get(status, 0) + 1
        lo, hi = ci
        if lo is not None and hi is not None and not math.isnan(truth):  # coverage where the truth is known
            self.with_interval += 1
            self.covered += lo - 1e-12 <= truth <= hi + 1e-12
            self.half_widths.append(estimate - lo if estimate is not None else (hi - lo) / 2)

    def rate(self, status: str) -> float:
        return self.status.get(status, 0) / self.n if self.n else math.nan

    def to_dict(self) -> dict:
        return {"n": self.n, **{s: self.rate(s) for s in ("fail", "inconclusive", "pass", "skipped")},
                "coverage": self.covered / self.with_interval if self.with_interval else math.nan,
                "with_interval": self.with_interval}


@dataclass
class Cell:
    """One simulated model (fair, or planted on ``planted_gate`` at ``multiple`` x its threshold) at one
    noise level and seed count, with every simulated gate's tally."""

    noise: str
    seeds: int
    condition: str
    planted_gate: str | None
    multiple: float
    truth: dict[str, float]
    tallies: dict[str, Tally]
    verdict: dict[str, int]


def cell_dict(c: Cell, runs: int) -> dict:
    """A cell as JSON (``bias-audit calibrate --json``, the benchmark's stored parts)."""
    return {"noise": c.noise, "seeds": c.seeds, "condition": c.condition, "planted_gate": c.planted_gate,
            "multiple": c.multiple, "truth": c.truth, "verdict": {k: v / runs for k, v in c.verdict.items()},
            "gates": {g: t.to_dict() for g, t in c.tallies.items() if t.n}}


def representative_conditions(config, gates: Sequence[str]) -> dict[int, str]:
    """One condition per seed count among those the gates cover (the first in config order)."""
    out: dict[int, str] = {}
    for gate in gates:
        for name in config.condition_names_for(gate):
            out.setdefault(len(config.conditions[name].seeds), name)
    return dict(sorted(out.items()))


def dataset_simulator(session: AuditSession) -> Simulator:
    """The session's dataset's simulated models; an AuditError (one line) when it has none."""
    simulator = session.dataset.simulator(session.items, session.config)
    if simulator is None:
        raise AuditError(f"calibrate: dataset '{session.dataset.name}' has no simulator of known-truth models "
                         "(a dataset provides one with Dataset.simulator)")
    return simulator


def simulated_gates(session: AuditSession, simulator: Simulator) -> list[str]:
    return [g for g in simulator.gates if session.gate_inapplicable(g) is None]


def calibrate(session: AuditSession, *, runs: int, seed: int, persist: float = 0.8, multiples: Sequence[float] = MULTIPLES,
              noises: Sequence[str] | None = None, gates: Sequence[str] | None = None, follower: bool = False,
              seed_counts: Sequence[int] | None = None, progress=None, simulator: Simulator | None = None) -> list[Cell]:
    """Every simulated model of the session's dataset (or of ``simulator``), ``runs`` times each, decided by the
    session's gates; ``follower`` adds a model that answers the biased option in ``FOLLOWER_SHARE`` of items
    (it must fail)."""
    simulator = simulator or dataset_simulator(session)
    gated = [g for g in (gates or simulated_gates(session, simulator))]
    if not gated:
        raise AuditError("calibrate: none of the config's gates can be simulated (enable a bias gate of the dataset: "
                         f"{', '.join(simulator.gates)})")
    designs = {k: c for k, c in representative_conditions(session.config, gated).items() if not seed_counts or k in seed_counts}
    models: list[tuple[str | None, float]] = [(None, 0.0)] + [(g, m) for g in gated for m in multiples]
    if follower:
        models.append(("follower", FOLLOWER_SHARE))
    cells = []
    for k_noise, noise in enumerate(noises or list(simulator.noise_levels)):
        for k_model, (planted_gate, mult) in enumerate(models):
            try:
                if planted_gate is None:
                    model = simulator.fair(noise)
                elif planted_gate == "follower":
                    model = simulator.follower(mult, noise)
                else:
                    model = simulator.planted(planted_gate, mult * session.config.gates[planted_gate].threshold, noise)
            except ValueError:  # not possible at the simulated accuracy (e.g. one unit leaning by 1.0)
                continue
            for seeds, condition in designs.items():
                rng = np.random.default_rng([seed, k_noise, k_model, seeds])
                tallies, verdict = {g: Tally() for g in gated}, {}
                for _ in range(runs):
                    sim = simulated_session(session, model, rng, persist)
                    statuses = []
                    for gate in gated:
                        if condition not in session.config.condition_names_for(gate):
                            continue
                        out = sim.evaluate(gate, SIMULATED, condition)
                        tallies[gate].add(out.status, out.ci, model.truth.get(gate, math.nan), out.estimate)
                        statuses.append(out.status)
                    overall = "fail" if "fail" in statuses else "pass" if all(s == "pass" for s in statuses) else "inconclusive"
                    verdict[overall] = verdict.get(overall, 0) + 1
                cells.append(Cell(noise, seeds, condition, planted_gate, mult, dict(model.truth), tallies, verdict))
                if progress is not None:
                    progress(cells[-1])
    return cells


def items_for_power(n_items: int, truth: float, threshold: float, half_width: float, confidence: float,
                    target: float = POWER_TARGET) -> float:
    """Items for ``target`` power to fail a model whose truth is ``truth`` > ``threshold``, scaling the
    measured mean interval half-width at ``n_items`` by 1/sqrt(n): a fail needs the lower end above the
    threshold, estimate - w > threshold with estimate ~ N(truth, (w/z)^2), so w = (truth - threshold) /
    (1 + z_target / z). An estimate (normal approximation), not a simulation at that size."""
    if not half_width > 0 or truth <= threshold:
        return math.nan
    z = stats.norm.ppf(0.5 + confidence / 2)
    needed = (truth - threshold) / (1 + stats.norm.ppf(target) / z)
    return n_items * (half_width / needed) ** 2


@dataclass
class GateSummary:
    gate: str
    noise: str
    seeds: int
    threshold: float
    false_fail: float  # the largest fail rate of a compliant model (fair, 0.5x, 0.9x)
    pass_fair: float
    power: dict[float, float]  # multiple > 1 -> fail rate
    coverage: float  # the lowest coverage over the models planted on this gate and the fair model
    items_for_power: float  # items for 80% power at 1.5x (estimate, from the reach of the interval's lower end)
    coverage_pooled: float = math.nan  # over all those models' runs together (the lowest of several noisy rates is biased low)
    coverage_runs: int = 0  # the runs coverage_pooled is over
    coverage_below: bool = False  # some model's coverage is below the nominal level beyond chance (binomial, 1%)


def summarize(cells: Sequence[Cell], config, n_items: int) -> list[GateSummary]:
    """Per gate, noise level and seed count: the figures ``bias-audit calibrate`` prints."""
    out = []
    keys = sorted({(g, c.noise, c.seeds) for c in cells for g, t in c.tallies.items() if t.n},
                  key=lambda k: (k[0], k[1], k[2]))
    for gate, noise, seeds in keys:
        mine = [c for c in cells if c.noise == noise and c.seeds == seeds and c.tallies[gate].n]
        fair = next((c for c in mine if c.planted_gate is None), None)
        if fair is None:  # the transfer gate: ``calibrate_transfer``
            continue
        planted = {c.multiple: c for c in mine if c.planted_gate == gate}
        compliant = [fair] + [c for m, c in planted.items() if m <= 1]
        threshold = config.gates[gate].threshold
        at_15 = planted.get(1.5)
        need = math.nan
        if at_15 is not None and at_15.tallies[gate].half_widths:
            need = items_for_power(n_items, at_15.truth[gate], threshold, float(np.mean(at_15.tallies[gate].half_widths)),
                                   config.confidence)
        covering = [c.tallies[gate] for c in [fair, *planted.values()] if c.tallies[gate].with_interval]
        runs_with = sum(t.with_interval for t in covering)
        below = any(stats.binom.cdf(t.covered, t.with_interval, config.confidence) < 0.01 for t in covering)
        out.append(GateSummary(gate, noise, seeds, threshold, max(c.tallies[gate].rate("fail") for c in compliant),
                               fair.tallies[gate].rate("pass"), {m: c.tallies[gate].rate("fail") for m, c in planted.items() if m > 1},
                               min(c.tallies[gate].to_dict()["coverage"] for c in [fair, *planted.values()]), need,
                               sum(t.covered for t in covering) / runs_with if runs_with else math.nan, runs_with, bool(below)))
    return out


TRANSFER_RHOS = (0.0, 0.5, 0.9)


def calibrate_transfer(session: AuditSession, *, runs: int, seed: int, persist: float = 0.8,
                       rhos: Sequence[float] = TRANSFER_RHOS, noises: Sequence[str] | None = None,
                       seed_counts: Sequence[int] | None = None, progress=None) -> list[Cell]:
    """The transfer gate on pairs of models of known true rho (the simulator's ``transfer``: a biased bare
    model, and a prompted one whose per-unit bias correlates with it at rho); [] when the dataset's
    simulator has none or the gate does not apply. A fail claims transfer."""
    simulator = session.dataset.simulator(session.items, session.config)
    if simulator is None or not hasattr(simulator, "transfer") or session.gate_inapplicable("transfer") is not None:
        return []
    cfg = session.config
    designs = {k: c for k, c in representative_conditions(cfg, ["transfer"]).items() if not seed_counts or k in seed_counts}
    cells = []
    for k_noise, noise in enumerate(noises or list(simulator.noise_levels)):
        for k_rho, rho in enumerate(rhos):
            bare, prompted, truth = simulator.transfer(rho, noise, seed=seed + k_rho)
            for seeds, condition in designs.items():
                rng = np.random.default_rng([seed, k_noise, 100 + k_rho, seeds])
                tally, verdict = Tally(), {}
                for _ in range(runs):
                    sim = simulated_session(session, prompted, rng, persist, {cfg.transfer_from: bare})
                    out = sim.evaluate("transfer", SIMULATED, condition)
                    tally.add(out.status, out.ci, truth)
                    verdict[out.status] = verdict.get(out.status, 0) + 1
                cells.append(Cell(noise, seeds, condition, "transfer", rho, {"transfer": truth}, {"transfer": tally}, verdict))
                if progress is not None:
                    progress(cells[-1])
    return cells


def transfer_rows(cells: Sequence[Cell]) -> list[dict]:
    """Per noise level, seed count and true rho: the share of runs claiming transfer (fail), and coverage."""
    return [{"noise": c.noise, "seeds": c.seeds, "rho": c.multiple, "true_rho": c.truth["transfer"],
             "claimed": c.tallies["transfer"].rate("fail"), **{k: v for k, v in c.tallies["transfer"].to_dict().items()
                                                              if k in ("coverage", "with_interval", "n")}}
            for c in cells if c.planted_gate == "transfer"]
