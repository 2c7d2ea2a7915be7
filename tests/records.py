"""results.json as two runs of the same audit must agree on it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def comparable(results: dict | Path) -> dict[str, Any]:
    """The record less what differs between any two runs by design: the timestamp, the run id (issue 23),
    the command line and each condition's measured cost (time and reuse, issue 25)."""
    if isinstance(results, Path):
        results = json.loads(results.read_text(encoding="utf-8"))
    results = json.loads(json.dumps(results))
    results.pop("created")
    results.pop("run_id", None)
    for model in results.get("models", []):
        for entry in model.get("conditions", {}).values():
            entry.pop("cost", None)
    results["provenance"].pop("command")
    return results
