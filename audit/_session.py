"""An audit session: the models, data and configuration of one run, and everything measured in it.

Models load once, each condition is measured once per model, and every gate outcome is recorded,
so the pytest plugin only has to hand this object to the tests and write its results at the end.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from . import _metrics as m
from ._cache import CachedScorer, ResultCache, cache_disabled_by_env, default_cache_path
from ._config import AuditConfig
from ._datasets import data_fingerprint, load_items
from ._errors import AuditError
from ._gates import GateOutcome, evaluate_gate
from ._items import Item
from ._models import LoadedModel, load_model, resolve_model_path
from ._occupations import occupations
from ._provenance import command_line, git_commit, hardware, package_versions
from ._scoring import Scorer
from ._study import ConditionRun, condition_summary, run_condition

SCHEMA_VERSION = "1.0"
DEFAULT_MODEL = "reference-fair"


@dataclass
class LoadOptions:
    device: str | None = None
    dtype: str | None = None
    trust_remote_code: bool = False
    allow_pickle: bool = False
    use_cache: bool = True  # the on-disk result cache (audit._cache); BIAS_AUDIT_NO_CACHE=1 also turns it off
    cache_path: Path | None = None  # default: $BIAS_AUDIT_CACHE_DIR/results.sqlite


@dataclass
class AuditSession:
    config: AuditConfig
    model_specs: list[str]
    load_options: LoadOptions = field(default_factory=LoadOptions)
    items: list[Item] = field(default_factory=list)
    pool: list[Item] = field(default_factory=list)
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
        for spec in self.model_specs:
            resolve_model_path_no_build(spec)
        cfg = self.config
        self.items = load_items(cfg.data, split=cfg.split, seed=cfg.seed)
        if not self.items:
            raise AuditError(f"data '{cfg.data}' has no items in split '{cfg.split}'")
        other = "dev" if cfg.split == "test" else "test"
        try:
            self.pool = load_items(cfg.data, split=other, seed=cfg.seed)
        except AuditError:
            self.pool = []
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

    def gate(self, metric: str, spec: str, condition: str, test_id: str = "") -> GateOutcome:
        """Evaluate one gate for a model and condition and record the outcome."""
        cfg = self.config
        gate_cfg = getattr(cfg.gates, metric)
        summary = self.summary(spec, condition)
        boot = {"confidence": cfg.confidence, "n_resamples": cfg.n_resamples, "seed": cfg.seed}
        precondition = None
        if metric == "a_sb":
            estimate, ci = summary["a_sb"], tuple(summary["a_sb_ci"])
        elif metric == "rpa_gap":
            estimate, ci = summary["rpa"]["gap"], tuple(summary["rpa"]["gap_ci"])
        elif metric in ("worst_o_sb", "accuracy"):
            run = self.run(spec, condition)
            stat = m.worst_o_sb_of if metric == "worst_o_sb" else m.accuracy_of
            estimate, ci = stat(run.items, run.selections), m.bootstrap_interval(run.items, run.selections, stat, **boot)
        elif metric == "transfer":
            t = self.transfer(spec, condition)
            estimate, ci = t.pearson, t.pearson_ci
            base = self.summary(spec, cfg.baseline)
            lo = base["a_sb_ci"][0]
            biased = lo is not None and lo == lo and lo > cfg.gates.a_sb.threshold
            precondition = (biased, f"the bare model's A-SB (lower bound {lo:.3f}) is within the a_sb threshold ({cfg.gates.a_sb.threshold:g})")
        else:
            raise AuditError(f"unknown gate '{metric}'")
        outcome = evaluate_gate(
            metric, gate_cfg, model=spec, condition=condition, estimate=estimate, ci=ci,  # type: ignore[arg-type]
            n_answered=summary["n_answered"], min_items=cfg.min_items, confidence=cfg.confidence, precondition=precondition,
        )
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


def resolve_model_path_no_build(spec: str) -> None:
    """Fail early on a model path that does not exist, without building reference models."""
    from ._reference import REFERENCE_MODELS

    if spec not in REFERENCE_MODELS:
        resolve_model_path(spec)


def write_results(results: dict, out_dir: Path) -> Path:
    """Write results.json atomically (a half-written record never replaces a good one)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "results.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_json_safe(results), indent=2, sort_keys=False, allow_nan=False), encoding="utf-8")
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
