"""Building results.json from a session (the run stage builds the record; audit.results reads and writes it):
what was measured, every gate outcome, and the provenance."""

from __future__ import annotations

import datetime as dt
import os
from typing import TYPE_CHECKING

from audit.datasets import condition_knobs
from audit.errors import ConfigError
from audit.gates import gate_spec
from audit.results.io import SCHEMA_VERSION
from audit.run.debiasing import debiasing_table
from audit.results.provenance import command_line, git_commit, hardware, package_versions
from audit.stats.multiplicity import family_wise_error

if TYPE_CHECKING:
    from audit.run.session import AuditSession


def recorded_config(cfg, ds) -> dict:
    """The run's settings as recorded: the gates that apply to its dataset (a preset also defines other
    datasets' gates, which this run skips) and, per condition, only the composition keys the dataset reads."""
    config = cfg.model_dump(mode="json")
    applies = {name for name in config["gates"] if _gate_applies(name, ds.name)}
    config["gates"] = {name: gate for name, gate in config["gates"].items() if name in applies}
    knobs = condition_knobs()
    unused = set(knobs) - set(ds.condition_knobs)
    for name, cond in config["conditions"].items():
        for knob in unused:
            if getattr(cfg.conditions[name], knob) == knobs[knob].default:
                cond.pop(knob, None)
    return config


def _gate_applies(name: str, dataset: str) -> bool:
    try:
        spec = gate_spec(name)
    except ConfigError:  # an unknown name was refused by the config already; keep what it recorded
        return True
    return spec.datasets is None or dataset in spec.datasets


def build_record(session: "AuditSession", coverage: dict | None = None, verdict: str | None = None) -> dict:
    cfg, ds = session.config, session.dataset
    gates = [o.to_dict() for o in session.outcomes]
    counts = {s: sum(g["status"] == s for g in gates) for s in ("pass", "fail", "inconclusive", "waived", "skipped")}
    models = []
    for spec, conditions in session.measured():
        transfer = {}
        if session.has_run(spec, cfg.transfer_from):
            transfer = {c: session.transfer_record(spec, c) for c in conditions if c != cfg.transfer_from}
        backend = session.loaded_backend(spec)
        debiasing = debiasing_table(session, spec, conditions)
        models.append({
            "name": spec,
            "identity": backend.identity() if backend is not None else {"model": spec},
            "conditions": {c: session.summary(spec, c) for c in conditions},
            "transfer": transfer,
            "choices": {c: session.run(spec, c).choices() for c in conditions},
            **({"debiasing": debiasing} if debiasing else {}),
        })
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "bias-transfer-audit", "version": package_versions().get("bias-transfer-audit")},
        "created": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        # fail: a gate failed; incomplete: not every required gate was decided; inconclusive: none failed but
        # one could not decide (config inconclusive = "fail"); pass (audit.run.coverage.verdict)
        "verdict": verdict or ("fail" if counts["fail"] else "incomplete"),
        "complete": bool(coverage and coverage["complete"]),
        "coverage": coverage or {"complete": False, "reasons": ["the run did not report its coverage"]},
        "summary": {"gates": len(gates), "passed": counts["pass"], "failed": counts["fail"],
                    "inconclusive": counts["inconclusive"], "waived": counts["waived"], "skipped": counts["skipped"],
                    "family_wise_error": family_wise_error(decided, 1 - cfg.confidence).statement(cfg.correction) if (decided := counts["pass"] + counts["fail"] + counts["inconclusive"]) else None,
                    "correction": cfg.correction},
        "dataset": ds.name,
        **ds.record_extras(session.items),
        "models": models,
        "items": {ds.item_id(it): ds.item_to_dict(it) for it in session.items},
        "gates": gates,
        "provenance": {
            "data": {"source": cfg.data, "sha256": ds.fingerprint(session.items), "n_items": len(session.items), "split": cfg.split},
            "config": recorded_config(cfg, ds),
            "seed": cfg.seed,
            "packages": package_versions(),
            "git_commit": git_commit(os.getcwd()),
            "hardware": hardware(session.device_type),
            "command": command_line(),
        },
    }
