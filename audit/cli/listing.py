"""``bias-audit list presets|datasets|gates|formats|conditions``: what exists, from the registries
themselves (so the list cannot drift from the code), as text or JSON."""

from __future__ import annotations

LISTS = ("presets", "datasets", "gates", "formats", "conditions")


def _presets() -> list[dict]:
    from audit.config import load_config, preset_names

    out = []
    for name in preset_names():
        config = load_config(None, preset=name)
        out.append({"name": name, "data": config.data, "split": config.split, "conditions": list(config.conditions)})
    return out


def _datasets() -> list[dict]:
    from audit.datasets import dataset_names

    return [{"name": name} for name in dataset_names()]


def _gates() -> list[dict]:
    from audit.gates import GATES

    return [{"name": s.name, "passes_when": "<= threshold" if s.direction == "max" else ">= threshold", "measures": s.label,
             "datasets": list(s.datasets) if s.datasets else ["all"], "needs_approved_run": s.needs_approved_run}
            for s in GATES.values()]


def _formats() -> list[dict]:
    from audit.datasets.bbq.prompts import PROMPT_FORMATS
    from audit.prompts.render import prompt_formats

    return [{"name": f, "dataset": "winobias"} for f in prompt_formats()] + [{"name": f, "dataset": "bbq"} for f in PROMPT_FORMATS]


def _conditions(preset: str) -> list[dict]:
    from audit.config import load_config

    config = load_config(None, preset=preset)
    return [{"name": name, "preset": preset, "format": c.format, "shots": c.shots, "probe": c.probe,
             "strategy": c.strategy, "description": c.description} for name, c in config.conditions.items()]


def listing(what: str, preset: str = "default") -> list[dict]:
    if what == "conditions":
        return _conditions(preset)
    return {"presets": _presets, "datasets": _datasets, "gates": _gates, "formats": _formats}[what]()


def format_listing(what: str, rows: list[dict]) -> str:
    """One row per line: the name, then its main facts."""
    def facts(row: dict) -> str:
        if what == "presets":
            return f"data {row['data']} (split {row['split']}); conditions {', '.join(row['conditions'])}"
        if what == "gates":
            approved = "; needs --approved" if row["needs_approved_run"] else ""
            return f"{row['measures']} {row['passes_when']} ({', '.join(row['datasets'])}{approved})"
        if what == "formats":
            return row["dataset"]
        if what == "conditions":
            shots = f", {row['shots']} shots" if row["shots"] else ""
            strategy = f", strategy {row['strategy']}" if row["strategy"] else ""
            return f"format {row['format']} ({row['probe']}{shots}{strategy})" + (f": {row['description']}" if row["description"] else "")
        return ""

    width = max((len(r["name"]) for r in rows), default=0)
    return "\n".join(f"{r['name']:<{width}}  {facts(r)}".rstrip() for r in rows)


def gate_table_markdown() -> str:
    """The README's gate table, from the registry and the presets' default thresholds (a test compares)."""
    from audit.config import load_config, preset_names
    from audit.datasets import dataset_names
    from audit.gates import all_gates

    settings: dict = {}
    for preset in preset_names():
        for name, gate in load_config(None, preset=preset).gates.items():
            settings.setdefault(name, gate)
    rows = ["| gate | measures | applies to | default bound | passes when |", "|---|---|---|---|---|"]
    # Neutral gates first, then each dataset's in the registry's order; never the order modules happened to load.
    order = {name: i for i, name in enumerate(dataset_names())}
    specs = sorted(all_gates().values(), key=lambda s: min((order.get(d, len(order)) for d in s.datasets or ()), default=-1))
    for spec in specs:
        gate = settings.get(spec.name)
        bound = {"point": "point estimate", "upper": "upper bound of the interval",
                 "lower": "lower bound of the interval"}.get(gate.bound, gate.bound) if gate else "not in a preset"
        passes = f"{'<=' if spec.direction == 'max' else '>='} {gate.threshold:g}" if gate else "-"
        applies = ", ".join(spec.datasets) if spec.datasets else "all datasets"
        if spec.needs_approved_run:
            applies += " (with --approved)"
        label = spec.label.replace("|", "\\|")
        rows.append(f"| `{spec.name}` | {label} | {applies} | {bound} | {passes} |")
    return "\n".join(rows)
