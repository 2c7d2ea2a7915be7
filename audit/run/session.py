"""An audit session: the models, data and configuration of one run, and everything measured in it.

Models load once, each condition is measured once per model, and every gate outcome is recorded,
so the pytest plugin only has to hand this object to the tests and write its results at the end.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from audit.stats import metrics as m
from audit.stats.regression import a_sb_change, accuracy_drop, baseline_condition
from audit.backends.cached import CachedScorer, ResultCache, cache_disabled_by_env, default_cache_path
from audit.config import AuditConfig
from audit.datasets.winobias.sources import data_fingerprint, load_items, subsample_twins
from audit.errors import AuditError, ConditionUnavailable
from audit.gates.evaluate import GateOutcome, evaluate_gate
from audit.datasets.winobias.items import Item
from audit.backends.hf.loading import LoadedModel, load_model, pick_device, pick_dtype, resolve_model_path
from audit.datasets.winobias.occupations import occupations
from audit.results.provenance import command_line, git_commit, hardware, package_versions, redact
from audit.backends.hf.scorer import Scorer
from audit.run.conditions import ConditionRun, check_condition, condition_summary, run_condition

SCHEMA_VERSION = "1.0"
DEFAULT_MODEL = "reference-fair"


@dataclass
class LoadOptions:
    device: str | None = None
    dtype: str | None = None
    trust_remote_code: bool = False
    allow_pickle: bool = False
    use_cache: bool = True  # the on-disk result cache (audit.backends.cached); BIAS_AUDIT_NO_CACHE=1 also turns it off
    cache_path: Path | None = None  # default: $BIAS_AUDIT_CACHE_DIR/results.sqlite


@dataclass
class AuditSession:
    config: AuditConfig
    model_specs: list[str]
    load_options: LoadOptions = field(default_factory=LoadOptions)
    items: list[Item] = field(default_factory=list)
    pool: list[Item] = field(default_factory=list)
    baseline: dict | None = None
    outcomes: list[GateOutcome] = field(default_factory=list)
    _models: dict[str, LoadedModel] = field(default_factory=dict)
    _runs: dict[tuple[str, str], ConditionRun] = field(default_factory=dict)
    _summaries: dict[tuple[str, str], dict] = field(default_factory=dict)
    _transfers: dict[tuple[str, str], m.Transfer] = field(default_factory=dict)
    _cache: ResultCache | None = None

    def prepare(self) -> None:
        """Everything that can fail on user input without loading weights: data, model names."""
        for spec in self.model_specs:
            if not spec.strip():
                raise AuditError("--audit-model: empty model name")
        opts = self.load_options
        for spec in self.model_specs:
            resolve_model_path(spec, allow_pickle=opts.allow_pickle, build=False)
        pick_dtype(opts.dtype, pick_device(opts.device))
        cfg = self.config
        self.items = load_items(cfg.data, split=cfg.split, seed=cfg.seed)
        if not self.items:
            raise AuditError(f"data '{cfg.data}' has no items in split '{cfg.split}'")
        if cfg.max_items is not None:
            self.items = subsample_twins(self.items, cfg.max_items, seed=cfg.seed)
        other = "dev" if cfg.split == "test" else "test"
        self.pool = load_items(cfg.data, split=other, seed=cfg.seed)
        for name, cond in cfg.conditions.items():
            check_condition(name, cond, self.items[0], self.pool)
        self.result_cache()  # a corrupt or unwritable cache file is a user error before any model loads

    def result_cache(self) -> ResultCache | None:
        """The on-disk result cache, opened once; None when disabled."""
        o = self.load_options
        if not o.use_cache or cache_disabled_by_env():
            return None
        if self._cache is None:
            self._cache = ResultCache(o.cache_path or default_cache_path())
        return self._cache

    def model(self, spec: str) -> LoadedModel:
        if spec not in self._models:
            o = self.load_options
            self._models[spec] = load_model(
                spec, device=o.device, dtype=o.dtype, trust_remote_code=o.trust_remote_code, allow_pickle=o.allow_pickle
            )
        return self._models[spec]

    def run(self, spec: str, condition: str) -> ConditionRun:
        key = (spec, condition)
        if key not in self._runs:
            scorer = Scorer(self.model(spec), batch_size=self.config.batch_size)
            cache = self.result_cache()
            if cache is not None:
                scorer = CachedScorer(scorer, cache)
            self._runs[key] = run_condition(scorer, condition, self.config.conditions[condition], self.items, self.pool)
        return self._runs[key]

    def summary(self, spec: str, condition: str) -> dict:
        key = (spec, condition)
        if key not in self._summaries:
            self._summaries[key] = condition_summary(self.run(spec, condition), self.config)
        return self._summaries[key]

    def transfer(self, spec: str, condition: str) -> m.Transfer:
        key = (spec, condition)
        if key not in self._transfers:
            base = self.run(spec, self.config.baseline).o_sb
            self._transfers[key] = m.transfer_correlation(
                base, self.run(spec, condition).o_sb, confidence=self.config.confidence,
                n_resamples=self.config.n_resamples, seed=self.config.seed,
            )
        return self._transfers[key]

    def _measure(self, metric: str, spec: str, condition: str) -> tuple[float, tuple[float, float], tuple[bool, str] | None]:
        """(estimate, interval, precondition) of a gate's metric; AuditError names what is missing."""
        cfg = self.config
        summary = self.summary(spec, condition)
        boot = {"confidence": cfg.confidence, "n_resamples": cfg.n_resamples, "seed": cfg.seed}
        if metric == "a_sb":
            return summary["a_sb"], tuple(summary["a_sb_ci"]), None
        if metric == "rpa_gap":
            return summary["rpa"]["gap"], tuple(summary["rpa"]["gap_ci"]), None
        run = self.run(spec, condition)
        if metric in ("worst_o_sb", "accuracy"):
            stat = m.worst_o_sb_of if metric == "worst_o_sb" else m.accuracy_of
            return stat(run.items, run.selections), m.bootstrap_interval(run.items, run.selections, stat, **boot), None
        if metric == "transfer":
            t = self.transfer(spec, condition)
            lo = self.summary(spec, cfg.baseline)["a_sb_ci"][0]
            biased = lo is not None and not math.isnan(lo) and lo > cfg.gates.a_sb.threshold
            why = f"the bare model's A-SB (lower bound {lo:.3f}) is within the a_sb threshold ({cfg.gates.a_sb.threshold:g})"
            return t.pearson, t.pearson_ci, (biased, why)
        if metric in ("a_sb_regression", "accuracy_regression"):
            found = baseline_condition(self.baseline, spec, condition) if self.baseline else None
            if found is None:
                why = "no baseline given (--audit-baseline)" if self.baseline is None else f"the baseline has no '{condition}' for {spec}"
                raise _Skip(f"regression check skipped: {why}")
            old_summary, old_choices = found
            if metric == "a_sb_regression":
                return a_sb_change(summary["o_sb"], old_summary["o_sb"], **boot) + (None,)
            return accuracy_drop(run.items, run.selections, old_choices, **boot) + (None,)
        raise AuditError(f"unknown gate '{metric}'")

    def gate_inapplicable(self, metric: str) -> str | None:
        """Why a gate does not apply to this whole run (disabled, or a regression gate without a baseline)."""
        if not getattr(self.config.gates, metric).enabled:
            return f"gate '{metric}' is disabled in the config"
        if metric.endswith("_regression") and self.baseline is None:
            return "no baseline given (--audit-baseline RESULTS_JSON)"
        return None

    def gate(self, metric: str, spec: str, condition: str, test_id: str = "") -> GateOutcome:
        """Evaluate one gate for a model and condition and record the outcome."""
        cfg = self.config
        try:
            estimate, ci, precondition = self._measure(metric, spec, condition)
            skip, n_answered = None, self.summary(spec, condition)["n_answered"]
        except _Skip as why:
            estimate, ci, precondition, skip, n_answered = math.nan, (math.nan, math.nan), None, str(why), 0
        except ConditionUnavailable as why:
            estimate, ci, precondition, n_answered = math.nan, (math.nan, math.nan), None, 0
            skip = f"condition '{condition}' cannot run on {spec}: {why}"
        outcome = evaluate_gate(
            metric, getattr(cfg.gates, metric), model=spec, condition=condition, estimate=estimate, ci=ci,
            n_answered=n_answered, min_items=cfg.min_items,
            confidence=cfg.confidence, precondition=precondition,
        )
        if skip:
            outcome.status, outcome.message, outcome.warning = "skipped", skip, None
        outcome.test = test_id
        self.outcomes.append(outcome)
        return outcome

    # --- the record -------------------------------------------------------------------------
    def results(self) -> dict:
        """results.json (schema in docs/results-schema.md) for everything measured so far."""
        gates = [o.to_dict() for o in self.outcomes]
        counts = {s: sum(g["status"] == s for g in gates) for s in ("pass", "fail", "waived", "skipped")}
        models = []
        for spec in self.model_specs:
            conditions = [c for c in self.config.conditions if (spec, c) in self._runs]
            if not conditions and spec not in self._models:
                continue
            transfer = {}
            if (spec, self.config.baseline) in self._runs:
                transfer = {c: self.transfer(spec, c).to_dict() for c in conditions if c != self.config.baseline}
            models.append({
                "name": spec,
                "identity": self._models[spec].identity if spec in self._models else {"model": spec},
                "conditions": {c: self.summary(spec, c) for c in conditions},
                "transfer": transfer,
                "choices": {c: self._runs[(spec, c)].choices() for c in conditions},
            })
        device = next(iter(self._models.values())).device.type if self._models else "cpu"
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "bias-transfer-audit", "version": package_versions().get("bias-transfer-audit")},
            "created": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
            "verdict": "fail" if counts["fail"] else "pass",
            "summary": {"gates": len(gates), "passed": counts["pass"], "failed": counts["fail"],
                        "waived": counts["waived"], "skipped": counts["skipped"]},
            "occupations": [{"name": o.name, "stereotype": o.stereotype, "pct_women": o.pct_women} for o in occupations()],
            "models": models,
            "items": {it.id: it.to_dict() for it in self.items},
            "gates": gates,
            "provenance": {
                "data": {"source": self.config.data, "sha256": data_fingerprint(self.items), "n_items": len(self.items), "split": self.config.split},
                "config": self.config.model_dump(mode="json"),
                "seed": self.config.seed,
                "packages": package_versions(),
                "git_commit": git_commit(os.getcwd()),
                "hardware": hardware(device),
                "command": command_line(),
            },
        }


class _Skip(Exception):
    """A gate that cannot apply in this run (e.g. a regression check without a baseline)."""


def write_results(results: dict, out_dir: Path) -> Path:
    """Write results.json atomically (a half-written record never replaces a good one)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "results.json"
    tmp = path.with_suffix(".json.tmp")
    text = redact(json.dumps(_json_safe(results), indent=2, sort_keys=False, allow_nan=False))  # no secret is ever written
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def _json_safe(value):
    """NaN and inf are not JSON: they become null."""
    if isinstance(value, float):
        return None if value != value or value in (float("inf"), float("-inf")) else value
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value
