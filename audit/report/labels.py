"""A gate's labels in the report, from the gate registry (never guessed from its name)."""

from __future__ import annotations


def gate_spec_or_none(metric: str):
    """The gate's registry entry (its label, short label and meaning), or None for a gate no longer registered."""
    import audit.datasets  # noqa: F401  (registers each dataset's gates)
    from audit.gates import all_gates

    return all_gates().get(metric)


def metric_label(metric: str) -> str:
    spec = gate_spec_or_none(metric)
    return spec.label if spec is not None else metric


def short_label(metric: str) -> str:
    """A gate row's label in the matrix and the summary (``GateSpec.short``, else the label)."""
    spec = gate_spec_or_none(metric)
    return (spec.short or spec.label) if spec is not None else metric
