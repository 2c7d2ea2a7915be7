"""An audit session: the models, data and configuration of one run, and everything measured in it.

Models load once, each condition is measured once per model, and every gate outcome is recorded,
so the pytest plugin only has to hand this object to the tests and write its results at the end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from audit.backends import Backend, BackendOptions, check_backend, load_backend
from audit.backends.cached import CachedBackend, ResultCache, cache_disabled_by_env, default_cache_path
from audit.config import AuditConfig
from audit.datasets import resolve_data
from audit.datasets.base import Dataset
from audit.errors import AuditError, ConditionUnavailable
from audit.gates import GateOutcome, evaluate_gate, gate_spec
from audit.run.conditions import ConditionRun, check_condition, condition_summary, run_condition
from audit.results.redaction import redact
from audit.run.context import GateContext, GateSkipped
from audit.stats.transfer import Transfer, transfer_correlation

DEFAULT_MODEL = "reference-fair"


@dataclass
class AuditSession:
    config: AuditConfig
    model_specs: list[str]
    backend_options: BackendOptions = field(default_factory=BackendOptions)
    use_cache: bool = True  # the on-disk result cache (audit.backends.cached); BIAS_AUDIT_NO_CACHE=1 also turns it off
    cache_path: object = None  # default: $BIAS_AUDIT_CACHE_DIR/results.sqlite
    dataset: Dataset | None = None
    items: list = field(default_factory=list)
    pool: list = field(default_factory=list)
    approved: dict | None = None  # an approved earlier results.json (--approved), for the regression gates
    outcomes: list[GateOutcome] = field(default_factory=list)
    _backends: dict[str, Backend] = field(default_factory=dict)
    _runs: dict[tuple[str, str], ConditionRun] = field(default_factory=dict)
    _summaries: dict[tuple[str, str], dict] = field(default_factory=dict)
    _transfers: dict[tuple[str, str], Transfer] = field(default_factory=dict)
    _cache: ResultCache | None = None

    def prepare(self) -> None:
        """Everything that can fail on user input without loading weights: data, model specs, conditions."""
        for spec in self.model_specs:
            check_backend(spec, self.backend_options)
        cfg = self.config
        self.dataset, source = resolve_data(cfg.data)
        self.dataset.check_source(source)
        self.items = self.dataset.load(source, split=cfg.split, seed=cfg.seed)
        if not self.items:
            raise AuditError(f"data '{cfg.data}' has no items in split '{cfg.split}'")
        if cfg.max_items is not None:
            self.items = self.dataset.subsample(self.items, cfg.max_items, seed=cfg.seed)
        other = "dev" if cfg.split == "test" else "test"
        self.pool = self.dataset.load(source, split=other, seed=cfg.seed)
        for name, cond in cfg.conditions.items():
            check_condition(self.dataset, name, cond, self.items[0], self.pool)
        self.result_cache()  # a corrupt or unwritable cache file is a user error before any model loads
        if len(self.items) < cfg.min_items:  # min_items is a floor: an audit this small could not decide
            limit = f" (max_items = {cfg.max_items})" if cfg.max_items is not None else ""
            raise AuditError(f"config key 'min_items': data '{cfg.data}' gives {len(self.items)} items{limit}, fewer than "
                             f"min_items = {cfg.min_items}; no gate could be decided (lower min_items deliberately for a smoke run)")

    def result_cache(self) -> ResultCache | None:
        """The on-disk result cache, opened once; None when disabled."""
        if not self.use_cache or cache_disabled_by_env():
            return None
        if self._cache is None:
            self._cache = ResultCache(self.cache_path or default_cache_path())
        return self._cache

    def backend(self, spec: str) -> Backend:
        """The model behind ``spec``, loaded once, answering from the result cache when it is on."""
        if spec not in self._backends:
            backend = load_backend(spec, self.backend_options)
            # Without the on-disk cache, an in-memory one: the same batching, so the same stored scores.
            cache = self.result_cache()
            cache = cache if cache is not None else ResultCache(None)  # (not `or`: an empty cache is falsy)
            self._backends[spec] = CachedBackend(backend, cache)
        return self._backends[spec]

    def run(self, spec: str, condition: str) -> ConditionRun:
        key = (spec, condition)
        if key not in self._runs:
            self._runs[key] = run_condition(self.backend(spec), self.dataset, condition, self.config.conditions[condition],
                                            self.items, self.pool)
        return self._runs[key]

    def summary(self, spec: str, condition: str) -> dict:
        key = (spec, condition)
        if key not in self._summaries:
            self._summaries[key] = condition_summary(self.run(spec, condition), self.config)
        return self._summaries[key]

    def transfer(self, spec: str, condition: str) -> Transfer:
        key = (spec, condition)
        if key not in self._transfers:
            cfg = self.config
            self._transfers[key] = transfer_correlation(
                self.run(spec, cfg.transfer_from).bias_by_unit(), self.run(spec, condition).bias_by_unit(),
                confidence=cfg.confidence, n_resamples=cfg.n_resamples, seed=cfg.seed,
            )
        return self._transfers[key]

    def gate_inapplicable(self, gate: str) -> str | None:
        """Why a gate does not apply to this whole run (disabled, another dataset's, no approved run)."""
        spec = gate_spec(gate)
        setting = self.config.gates.get(gate)
        if setting is None:
            return f"gate '{gate}' has no threshold in the config"
        if not setting.enabled:
            return f"gate '{gate}' is disabled in the config"
        if spec.datasets is not None and self.dataset is not None and self.dataset.name not in spec.datasets:
            return f"gate '{gate}' applies to {', '.join(spec.datasets)}, not to {self.dataset.name}"
        if spec.needs_approved_run and self.approved is None:
            return "no approved run given (--approved RESULTS_JSON)"
        return None

    def gate(self, gate: str, spec: str, condition: str, test_id: str = "") -> GateOutcome:
        """Evaluate one gate for a model and condition and record the outcome."""
        cfg = self.config
        setting = cfg.gates.get(gate)
        if setting is None:
            raise AuditError(f"gate '{gate}' has no threshold in the config (add [gates.{gate}])")
        try:
            measured = GateContext(self, spec, condition).measure(gate)
            estimate, ci, precondition = measured.estimate, measured.ci, measured.precondition
            skip, n_answered = None, self.summary(spec, condition)["n_answered"]
        except GateSkipped as why:
            estimate, ci, precondition, skip, n_answered = math.nan, (math.nan, math.nan), None, str(why), 0
        except ConditionUnavailable as why:
            estimate, ci, precondition, n_answered = math.nan, (math.nan, math.nan), None, 0
            skip = f"condition '{condition}' cannot run on {spec}: {why}"
        outcome = evaluate_gate(
            gate, setting, model=spec, condition=condition, estimate=estimate, ci=ci,
            n_answered=n_answered, min_items=cfg.min_items, confidence=cfg.confidence, precondition=precondition,
        )
        if skip:
            outcome.status, outcome.message, outcome.warning = "skipped", skip, None
        outcome.test = test_id
        outcome.id, outcome.message = redact(outcome.id), redact(outcome.message)  # the console and JUnit show these
        outcome.warning = redact(outcome.warning) if outcome.warning else None
        self.outcomes.append(outcome)
        return outcome

    def measured(self) -> list[tuple[str, list[str]]]:
        """(model, conditions measured) for each model that was loaded, in config order."""
        out = []
        for spec in self.model_specs:
            conditions = [c for c in self.config.conditions if (spec, c) in self._runs]
            if conditions or spec in self._backends:
                out.append((spec, conditions))
        return out

    def results(self, coverage: dict | None = None, verdict: str | None = None) -> dict:
        """results.json (schema in docs/results-schema.md) for everything measured so far; ``coverage``
        and ``verdict`` come from ``audit.run.coverage`` (without them the run counts as incomplete)."""
        from audit.results.record import build_record

        return build_record(self, coverage=coverage, verdict=verdict)
