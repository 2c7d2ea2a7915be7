"""Comparing a run with an approved earlier run (its results.json): has a metric got significantly worse?"""

from __future__ import annotations

import json
from pathlib import Path

from audit.stats import metrics as m
from audit.errors import AuditError
from audit.datasets.winobias.items import Item

SUPPORTED_SCHEMAS = ("1.0",)


def load_baseline(path: str | Path) -> dict:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AuditError(f"--baseline '{p}': no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AuditError(f"--baseline '{p}': not a readable results.json ({exc})") from None
    if not isinstance(data, dict) or data.get("schema_version") not in SUPPORTED_SCHEMAS:
        raise AuditError(f"--baseline '{p}': not a bias-audit results.json of schema {', '.join(SUPPORTED_SCHEMAS)}")
    return data


def baseline_condition(baseline: dict, model: str, condition: str) -> tuple[dict, list[dict]] | None:
    """The baseline's summary and choices for a model and condition, or None when it has none."""
    for entry in baseline.get("models", []):
        if entry.get("name") == model and condition in entry.get("conditions", {}):
            return entry["conditions"][condition], entry.get("choices", {}).get(condition, [])
    return None


def a_sb_change(new_o_sb: dict, old_o_sb: dict, **boot) -> tuple[float, tuple[float, float]]:
    """Paired over occupations: mean of |O-SB| now minus |O-SB| before (= the change in A-SB)."""
    shared = [o for o in new_o_sb if new_o_sb[o] is not None and old_o_sb.get(o) is not None]
    return m.paired_mean_change([abs(new_o_sb[o]) - abs(old_o_sb[o]) for o in shared], **boot)


def accuracy_drop(items: list[Item], selections: list[str | None], old_choices: list[dict], **boot) -> tuple[float, tuple[float, float]]:
    """Paired over items answered in both runs: correct before minus correct now (= the accuracy drop),
    resampling gender twins together."""
    old = {c["item"]: c for c in old_choices if c.get("selected") is not None}
    diffs, clusters = [], []
    for item, sel in zip(items, selections):
        before = old.get(item.id)
        if sel is None or before is None:
            continue
        diffs.append(float(bool(before["correct"])) - float(sel == item.referent))
        clusters.append(m.twin_key(item))
    return m.paired_mean_change(diffs, clusters, **boot)
