"""The debiasing study (Sivakumar, Mackraz et al. 2025, section on prompt-based debiasing): for each
condition marked as a debiasing ``strategy`` and each model, the change in bias and accuracy against
the reference condition (``debiasing_reference``, zero-shot by default) as a paired interval (the
dataset's pairs resampled jointly in both conditions), and whether bias transfer persists under it
(Pearson rho of intrinsic vs this condition's per-unit bias, with its interval).

Sign convention: change = strategy minus reference; a negative change in a bias metric means the
strategy reduced bias. ``transfer.persists`` is true when rho's interval lies above 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from audit.run.session import AuditSession

def strategy_conditions(session: "AuditSession") -> list[str]:
    return [name for name, cond in session.config.conditions.items() if cond.strategy]


def strategy_change(session: "AuditSession", spec: str, condition: str) -> dict:
    """The dataset's paired change (``Dataset.paired_change``) of ``condition`` against the reference."""
    def compute() -> dict:
        cfg = session.config
        before, after = session.run(spec, cfg.debiasing_reference), session.run(spec, condition)
        return session.dataset.paired_change((before.items, before.selections), (after.items, after.selections), cfg.boot)

    return session.memo(("debiasing", spec, condition), compute)


def _transfer(session: "AuditSession", spec: str, condition: str) -> dict:
    if condition == session.config.transfer_from:
        return {"pearson": 1.0, "note": "the transfer-from condition itself"}
    t = session.transfer(spec, condition).to_dict()
    lo = t["pearson_ci"][0]
    t["persists"] = None if lo is None or lo != lo else bool(lo > 0)
    return t


def debiasing_table(session: "AuditSession", spec: str, conditions: list[str]) -> dict | None:
    """``models[*].debiasing`` of results.json (docs/results-schema.md), over the measured strategies."""
    cfg = session.config
    strategies = [c for c in strategy_conditions(session) if c in conditions]
    if not strategies or cfg.debiasing_reference not in conditions:
        return None
    with_transfer = cfg.transfer_from in conditions
    rows = []
    for name in strategies:
        cond = cfg.conditions[name]
        rows.append({
            "condition": name,
            "strategy": cond.strategy,
            "description": cond.description,
            "change": strategy_change(session, spec, name),
            "transfer": _transfer(session, spec, name) if with_transfer else None,
        })
    return {
        "reference": cfg.debiasing_reference,
        "reference_transfer": _transfer(session, spec, cfg.debiasing_reference) if with_transfer else None,
        "headline_bias": session.dataset.headline_bias,
        "strategies": rows,
    }
