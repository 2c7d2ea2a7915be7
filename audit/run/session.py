"""An audit session: the models, data and configuration of one run, and everything measured in it.

Models load once, each condition is measured once per model, and every gate outcome is recorded,
so the pytest plugin only has to hand this object to the tests and write its results at the end.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace
from typing import Any

from audit.backends import Backend, BackendOptions, check_backend, load_backend
from audit.backends.cached import CachedBackend, ResultCache, cache_disabled_by_env, default_cache_path
from audit.config import AuditConfig
from audit.datasets import resolve_data
from audit.datasets.base import Dataset
from audit.errors import AuditError, ConditionUnavailable
from audit.gates import GateOutcome, gate_spec
from audit.gates.decide import decide
from audit.prompts.render import set_prompt_dirs
from audit.results.redaction import redact
from audit.run import progress
from audit.run.conditions import ConditionRun, check_condition, condition_summary, request_count, run_condition
from audit.run.collector import freeze_long_lived
from audit.run.context import GateSkipped, RunGateContext
from audit.run.shot_pools import SPLITS, CrossSplitPool, without_repeats
from audit.stats.transfer import Transfer, transfer_correlation

DEFAULT_MODEL = "reference-fair"


def _loading_text(spec: str) -> str:
    """The stage line for loading a model: a reference model not yet built says it is being built."""
    from audit.datasets.winobias.reference_model import REFERENCE_MODELS

    name = spec.removeprefix("reference:")
    if name in REFERENCE_MODELS:
        from audit.datasets.winobias.reference_model.builder import INFO_FILE, _model_dir, build_hash

        if not (_model_dir(name, build_hash()) / INFO_FILE).is_file():
            return "building the reference models (first use only; a few minutes on a CPU)"
    return f"loading model {spec}"


@dataclass
class AuditSession:
    config: AuditConfig
    model_specs: list[str]
    aliases: dict[str, str] = field(default_factory=dict)  # display name -> model spec (--name NAME=MODEL)
    backend_options: BackendOptions = field(default_factory=BackendOptions)
    use_cache: bool = True  # the on-disk result cache (audit.backends.cached); BIAS_AUDIT_NO_CACHE=1 also turns it off
    cache_path: object = None  # default: $BIAS_AUDIT_CACHE_DIR/results.sqlite
    dataset: Dataset | None = None
    items: list = field(default_factory=list)
    pool: Any = field(default_factory=list)  # the few-shot pool: a list, or a CrossSplitPool (split = "all")
    approved: dict | None = None  # an approved earlier results.json (--approved), for the regression gates
    outcomes: list[GateOutcome] = field(default_factory=list)
    _backends: dict[str, Backend] = field(default_factory=dict)
    _runs: dict[tuple[str, str], ConditionRun] = field(default_factory=dict)
    _summaries: dict[tuple[str, str], dict] = field(default_factory=dict)
    _transfers: dict[tuple[str, str], Transfer] = field(default_factory=dict)
    _outcomes: dict[tuple[str, str, str], GateOutcome] = field(default_factory=dict)
    _cache: ResultCache | None = None
    _extras: dict = field(default_factory=dict)  # other per-model results computed once (e.g. the debiasing changes)

    def prepare(self) -> None:
        """Everything that can fail on user input without loading weights: data, model specs, conditions.
        Under torchrun every rank fails alike (rank 0 alone opens the cache file)."""
        from audit.backends.distributed import agree_on_errors, init_distributed

        world = init_distributed()
        with agree_on_errors(world):
            self._prepare()

    def _prepare(self) -> None:
        for spec in self.model_specs:
            check_backend(self.aliases.get(spec, spec), self.backend_options)
        cfg = self.config
        set_prompt_dirs(cfg.prompt_dirs)
        self.dataset, source = resolve_data(cfg.data)
        self.dataset.configure(cfg)
        self.dataset.check_source(source)
        progress.stage(f"loading data '{cfg.data}' ({self.dataset.name}, split {cfg.split}, seed {cfg.seed})")
        if cfg.split == "all":  # both splits, cross-fitted: each item's shots from the split it is not in
            by_split = {s: self.dataset.load(source, split=s, seed=cfg.seed) for s in SPLITS}
            dev, repeats = without_repeats(self.dataset, by_split["dev"], by_split["test"])
            if repeats:
                progress.stage(f"split all: {repeats} dev items repeat a test item's question; each is audited once")
            self.items, self.pool = [*dev, *by_split["test"]], CrossSplitPool.of(self.dataset, by_split)
        else:
            self.items = self.dataset.load(source, split=cfg.split, seed=cfg.seed)
            self.pool = self.dataset.load(source, split="dev" if cfg.split == "test" else "test", seed=cfg.seed)
        if not self.items:
            raise AuditError(f"data '{cfg.data}' has no items in split '{cfg.split}'")
        if cfg.max_items is not None:
            self.items = self.dataset.subsample(self.items, cfg.max_items, seed=cfg.seed)
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
            from audit.backends.distributed import RankZeroCache, world_from_env

            world = world_from_env()
            if not world.distributed:
                self._cache = ResultCache(self.cache_path or default_cache_path())
            else:  # one writer: rank 0 reads and writes the file, the other ranks receive its lookups
                self._cache = RankZeroCache(ResultCache(self.cache_path or default_cache_path()) if world.is_main else None, world)
        return self._cache

    def backend(self, spec: str) -> Backend:
        """The model behind ``spec``, loaded once, answering from the result cache when it is on."""
        if spec not in self._backends:
            from audit.backends.distributed import DistributedBackend, rank_device, world_from_env

            world = world_from_env()
            options = self.backend_options
            if world.distributed:
                if options.device_map:
                    raise AuditError("--device-map cannot be combined with torchrun data parallelism (every rank would "
                                     "spread its copy over all GPUs); use one or the other")
                options = replace(options, device=rank_device(world, options.device))
            with progress.activity(_loading_text(self.aliases.get(spec, spec))):
                backend = load_backend(self.aliases.get(spec, spec), options)
            freeze_long_lived()  # the model lives until the run's end: later collections need not scan it
            if world.distributed:
                backend = DistributedBackend(backend, world)
            # Without the on-disk cache, an in-memory one: the same batching, so the same stored scores.
            cache = self.result_cache()
            cache = cache if cache is not None else ResultCache(None)  # (not `or`: an empty cache is falsy)
            self._backends[spec] = CachedBackend(backend, cache)
        return self._backends[spec]

    def run(self, spec: str, condition: str) -> ConditionRun:
        key = (spec, condition)
        if key not in self._runs:
            backend, cond = self.backend(spec), self.config.conditions[condition]
            with progress.task(spec, condition, request_count(self.dataset, cond, self.items)) as task:
                self._runs[key] = run_condition(backend, self.dataset, condition, cond, self.items, self.pool)
            self._record_throughput(spec, condition, backend, task)
        return self._runs[key]

    def _record_throughput(self, spec: str, condition: str, backend: Backend, task: progress.Task) -> None:
        """The measured speed, for ``bias-audit plan`` (rank 0, with the result cache on)."""
        from audit.backends.distributed import is_main_process
        from audit.run.throughput import record_throughput

        cache = self.result_cache()
        if cache is None or not is_main_process() or not isinstance(backend, CachedBackend) or not task.scored:
            return
        record_throughput(cache.path, backend.model_key, spec, condition, backend.device_type,
                          requests=task.scored, tokens=int(task.tokens), seconds=task.seconds)

    def summary(self, spec: str, condition: str) -> dict:
        key = (spec, condition)
        if key not in self._summaries:
            run = self.run(spec, condition)
            with progress.activity(f"resampling {spec} · {condition} ({self.config.n_resamples:,} resamples)"):
                self._summaries[key] = condition_summary(run, self.config)
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

    def transfer_record(self, spec: str, condition: str) -> dict:
        """The transfer entry of results.json: the papers' correlations, whether transfer is defined at all,
        and the dataset's noise-corrected transfer where it has one."""
        record = self.transfer(spec, condition).to_dict()
        defined = record["pearson"] is not None and not math.isnan(record["pearson"])
        record["defined"] = defined
        if not defined:
            record["reason"] = "no bias to transfer: the per-unit bias is constant (e.g. all 0) in one of the conditions"
        cfg = self.config
        boot = cfg.boot
        bare, prompted = self.run(spec, cfg.transfer_from), self.run(spec, condition)
        corrected = self.dataset.corrected_transfer((bare.items, bare.selections), (prompted.items, prompted.selections), boot)
        if corrected is not None:  # pairs matched by id, so conditions with different seed counts align
            record["corrected"] = corrected
            if not corrected["defined"]:  # a correlation of noise is not reported as one (kept as naive_*)
                record["defined"], record["reason"] = False, corrected["reason"]
                for key in ("pearson", "pearson_ci", "spearman", "spearman_ci", "p_value"):
                    record[f"naive_{key}"], record[key] = record[key], None
        return record

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

    def evaluate(self, gate: str, spec: str, condition: str) -> GateOutcome:
        """One gate's outcome for a model and condition (measured once; not recorded)."""
        key = (gate, spec, condition)
        if key in self._outcomes:
            return self._outcomes[key]
        cfg = self.config
        if cfg.gates.get(gate) is None:
            raise AuditError(f"gate '{gate}' has no threshold in the config (add [gates.{gate}])")
        measured, skip, n_answered = None, None, 0
        try:
            measured = self._measure(gate, spec, condition)
            n_answered = self.summary(spec, condition)["n_answered"]
        except GateSkipped as why:
            skip = str(why)
        except ConditionUnavailable as why:
            skip = f"condition '{condition}' cannot run on {spec}: {why}"
        outcome = decide(gate, cfg, model=spec, condition=condition, measured=measured, skip=skip, n_answered=n_answered,
                         holm_measurements=self._measurements_over_conditions(gate, spec),
                         verdict_measurements=self._measurements_over_verdict(spec))
        self._outcomes[key] = outcome
        return outcome

    def _measure(self, gate: str, spec: str, condition: str):
        """A gate's measurement, kept (a corrected fail asks for every condition's again); a conditional gate's
        (transfer) depends on another gate's outcome and is measured afresh."""
        if gate_spec(gate).conditional:
            return RunGateContext(self, spec, condition).measure(gate)
        return self.memo(("measured", gate, spec, condition), lambda: RunGateContext(self, spec, condition).measure(gate))

    def _measurements_over_conditions(self, gate: str, spec: str):
        """For Holm's correction (``audit.gates.decide``): the gate's measurement in each condition it covers,
        asked only when the gate fails."""
        def measurements() -> list[tuple[str, object]]:
            found = []
            for c in self.config.condition_names_for(gate):
                try:
                    found.append((c, self._measure(gate, spec, c)))
                except (GateSkipped, ConditionUnavailable):
                    continue
            return found
        return measurements

    def _measurements_over_verdict(self, spec: str):
        """For a verdict-wide correction (``holm_verdict``, ``two_step_verdict``): every decision of the verdict for model ``spec`` (each required
        gate in each condition it covers), as (gate, condition, measurement); conditional gates (transfer,
        which fails only after the bare model's bias gate failed) are left out, as they add no error."""
        def measurements() -> list[tuple[str, str, object]]:
            from audit.run.coverage import required_gates

            found = []
            for gate in required_gates(self):
                if gate_spec(gate).conditional:
                    continue
                for c, m in self._measurements_over_conditions(gate, spec)():
                    found.append((gate, c, m))
            return found
        return measurements

    def gate(self, gate: str, spec: str, condition: str, test_id: str = "") -> GateOutcome:
        """Evaluate one gate for a model and condition and record the outcome (for the record and the report)."""
        outcome = copy.copy(self.evaluate(gate, spec, condition))
        outcome.test = test_id
        outcome.id, outcome.message = redact(outcome.id), redact(outcome.message)  # the console and JUnit show these
        outcome.warning = redact(outcome.warning) if outcome.warning else None
        self.outcomes.append(outcome)
        return outcome

    def has_run(self, spec: str, condition: str) -> bool:
        """Was ``condition`` measured for model ``spec`` in this session (without measuring it)?"""
        return (spec, condition) in self._runs

    def release_models(self) -> None:
        """Free every loaded model's weights once nothing more will be scored (a run's end, before its record and
        views are written), so the run's peak memory is the model and one batch, or the record and its report,
        not both. The backends still give their identities to the record."""
        for backend in self._backends.values():
            backend.release_model()

    def loaded_backend(self, spec: str) -> Backend | None:
        """The model ``spec`` if it was loaded in this session (None: never loaded; nothing is loaded here)."""
        return self._backends.get(spec)

    @property
    def device_type(self) -> str:
        """The device the loaded models ran on ("cpu" when none was loaded)."""
        return next(iter(self._backends.values())).device_type if self._backends else "cpu"

    def memo(self, key: tuple, compute):
        """A per-session result computed once (``compute()``) and kept under ``key`` (e.g. a debiasing change)."""
        if key not in self._extras:
            self._extras[key] = compute()
        return self._extras[key]

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
        from audit.run.record import build_record

        return build_record(self, coverage=coverage, verdict=verdict)
