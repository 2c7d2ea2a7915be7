"""Two runs side by side: the approved run (``--baseline``) and the candidate.

Which gates changed status (matched by gate id), and per model and condition present in both runs
the paired changes with intervals: the statistics the record's dataset compares
(``Dataset.report_comparisons``: e.g. a bias paired over its units; a positive change = more bias now)
and accuracy paired over the items answered in both runs, resampling the dataset's pairs together
(``Dataset.record_pair_key``, the ``accuracy_regression`` gate's unit; positive = more accurate now).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Callable, Hashable

from audit.datasets import dataset_names, get_dataset
from audit.datasets.report_data import ComparedQuantity, boot_settings
from audit.stats.bootstrap import paired_mean_change
from .format import fmt_ci, fmt_num
from .recorded import record_dataset

_RANK = {"pass": 0, "waived": 1, "skipped": 1, "inconclusive": 2, "fail": 3}


def _pair_key_of(results: Mapping) -> Callable[[str, Mapping], Hashable]:
    """The recorded dataset's resampling unit of a recorded item (``Dataset.record_pair_key``)."""
    name = results.get("dataset")
    if isinstance(name, str) and name in dataset_names():
        return get_dataset(name).record_pair_key
    return lambda item_id, item: item_id


def _accuracy_change(new: list, old: list, items: Mapping, pair_key: Callable[[str, Mapping], Hashable],
                     **boot) -> tuple[float, tuple[float, float], int]:
    before = {c.get("item"): c for c in old if isinstance(c, Mapping) and c.get("selected") is not None}
    diffs, clusters = [], []
    for choice in new:
        prior = before.get(choice.get("item")) if isinstance(choice, Mapping) else None
        item = items.get(str(choice.get("item"))) if prior else None
        if prior is None or choice.get("selected") is None or not isinstance(item, Mapping):
            continue
        diffs.append(float(bool(choice.get("correct"))) - float(bool(prior.get("correct"))))
        clusters.append(pair_key(str(choice.get("item")), item))
    change, ci = paired_mean_change(diffs, clusters, **boot)
    return change, ci, len(diffs)


def _compared(q: ComparedQuantity, cond: Mapping, prior: Mapping, boot: Mapping) -> dict:
    """The row's columns of one compared statistic, keyed by its ``key``."""
    change, ci = q.change(cond, prior, boot)
    k = q.key
    return {f"{k}_before": fmt_num(q.field.value(prior)), f"{k}_after": fmt_num(q.field.value(cond)),
            f"{k}_change": change, f"{k}_change_ci": ci, f"{k}_text": fmt_num(change, sign=True),
            f"{k}_ci_text": fmt_ci(ci, sign=True), f"{k}_worse": ci[0] > 0, f"{k}_better": ci[1] < 0}


def compare_runs(current: Mapping, approved: Mapping) -> dict:
    """The view of the comparison (formatted), plus the raw paired changes for charts and tests."""
    old_gates = {str(g.get("id")): g for g in approved.get("gates") or [] if isinstance(g, Mapping)}
    new_gates = {str(g.get("id")): g for g in current.get("gates") or [] if isinstance(g, Mapping)}
    changed = []
    for gid, gate in new_gates.items():
        before = old_gates.get(gid)
        if before is not None and before.get("status") != gate.get("status"):
            worse = _RANK.get(str(gate.get("status")), 1) > _RANK.get(str(before.get("status")), 1)
            changed.append({"id": gid, "before": str(before.get("status")), "after": str(gate.get("status")),
                            "worse": worse, "estimate_before": fmt_num(before.get("estimate")),
                            "estimate_after": fmt_num(gate.get("estimate"))})
    changed.sort(key=lambda c: (not c["worse"], c["id"]))
    boot = boot_settings(current)
    pair_key = _pair_key_of(current)
    dataset = record_dataset(current)
    quantities = dataset.report_comparisons() if dataset is not None else ()
    old_models = {m.get("name"): m for m in approved.get("models") or [] if isinstance(m, Mapping)}
    rows = []
    for model in current.get("models") or []:
        old = old_models.get(model.get("name"))
        if old is None:
            continue
        for name, cond in (model.get("conditions") or {}).items():
            prior = (old.get("conditions") or {}).get(name)
            if not isinstance(prior, Mapping) or not isinstance(cond, Mapping):
                continue
            row = {"model": str(model.get("name")), "condition": name}
            for q in quantities:
                row.update(_compared(q, cond, prior, boot))
            acc, acc_ci, n = _accuracy_change((model.get("choices") or {}).get(name) or [],
                                              (old.get("choices") or {}).get(name) or [], current.get("items") or {},
                                              pair_key, **boot)
            row.update({"accuracy_change": acc, "accuracy_change_ci": acc_ci, "n_paired": n,
                        "accuracy_text": fmt_num(acc, sign=True), "accuracy_ci_text": fmt_ci(acc_ci, sign=True),
                        "accuracy_worse": acc_ci[1] < 0})
            row["worse"] = row["accuracy_worse"] or any(row[f"{q.key}_worse"] for q in quantities)
            rows.append(row)
    return {
        "renamed": [(str(k), str(v)) for k, v in (approved.get("approved_as") or {}).items()],
        "approved": {"created": str(approved.get("created") or "?"), "verdict": str(approved.get("verdict") or "?"),
                     "models": [str(m.get("name")) for m in approved.get("models") or [] if isinstance(m, Mapping)]},
        "changed": changed,
        "n_worse": sum(c["worse"] for c in changed),
        "new_gates": sorted(set(new_gates) - set(old_gates)),
        "gone_gates": sorted(set(old_gates) - set(new_gates)),
        "rows": rows,
        "quantities": [{"key": q.key, "label": q.label, "caption": q.caption} for q in quantities],
    }


def _rename_plan(approved: Mapping, current: Mapping, specs: list[str]) -> dict[str, str]:
    """{approved name: this run's name} from ``--approved-as`` values (NAME, or APPROVED_NAME=NAME)."""
    from audit.errors import AuditError

    old_names = [str(m.get("name")) for m in approved.get("models") or [] if isinstance(m, Mapping)]
    new_names = [str(m.get("name")) for m in current.get("models") or [] if isinstance(m, Mapping)]
    plan: dict[str, str] = {}
    for spec in specs:
        old, sep, new = spec.partition("=")
        if not sep:
            if len(old_names) != 1:
                raise AuditError(f"--approved-as '{spec}': the approved run has {len(old_names)} models "
                                 f"({', '.join(old_names)}); say which: --approved-as APPROVED_NAME={spec}")
            old, new = old_names[0], spec
        if old not in old_names:
            raise AuditError(f"--approved-as '{spec}': the approved run has no model '{old}' "
                             f"(it has {', '.join(old_names) or 'none'})")
        if new not in new_names:
            raise AuditError(f"--approved-as '{spec}': this run has no model '{new}' (it has {', '.join(new_names) or 'none'})")
        plan[old] = new
    return plan


def rename_approved(approved: Mapping, current: Mapping, specs: list[str]) -> dict:
    """The approved run with its models renamed (``--approved-as``), so that its gates and conditions are
    matched with this run's model of the chosen name: model names, gate models and gate ids."""
    import copy

    plan = _rename_plan(approved, current, specs)
    out = copy.deepcopy(dict(approved))
    for model in out.get("models") or []:
        if isinstance(model, dict) and str(model.get("name")) in plan:
            model["name"] = plan[str(model["name"])]
    for gate in out.get("gates") or []:
        old = str(gate.get("model")) if isinstance(gate, dict) else None
        if old in plan:
            gate["model"] = plan[old]
            gid = str(gate.get("id", ""))
            head, sep, rest = gid.partition(f"[{old}-")
            if sep:
                gate["id"] = f"{head}[{plan[old]}-{rest}"
    out["approved_as"] = dict(plan)  # shown beside the comparison
    return out
