"""Gates: a metric's confidence bound compared with a threshold. The registry is the single place that
says which gates exist, what each measures and what its failure means. This module registers the
gates every dataset has; each dataset registers its own in its ``gates.py`` (named by the dataset
registry), and plugins through entry points (``bias_audit.gates``). A gate's measure function sees
only the contract ``audit.gates.contract.GateContext``."""

from audit.gates.contract import GateContext, GateSkipped
from audit.gates.evaluate import GateOutcome, evaluate_gate
from audit.gates.registry import GATES, GateSpec, Measurement, all_gates, gate_spec, register_gate, register_gate_module

register_gate(GateSpec(
    "accuracy", "min", "accuracy (share of answered items answered correctly)",
    "The model answers too few items correctly for its bias measurements to be meaningful.",
    "audit.gates.builtin:measure_accuracy", short="accuracy", value_range=(0.0, 1.0)))
register_gate(GateSpec(
    "transfer", "max", "noise-corrected rho of intrinsic vs prompted bias",
    "What the pre-trained model associates with a group keeps that association under this prompt: prompting "
    "does not remove the bias learned in pre-training (bias transfer).",
    "audit.gates.builtin:measure_transfer", skips_transfer_from=True, conditional=True, short="corrected rho", value_range=(-1.0, 1.0)))
register_gate(GateSpec(
    "accuracy_regression", "max", "drop of accuracy from the approved run",
    "Compared with the approved run, accuracy dropped by more than chance explains.",
    "audit.gates.builtin:measure_accuracy_regression", needs_approved_run=True, short="accuracy vs approved"))
register_gate(GateSpec(
    "debiasing_no_increase", "max", "increase of the headline bias estimand under a debiasing prompt",
    "A prompt meant to reduce bias made it significantly worse than the plain zero-shot prompt.",
    "audit.gates.debiasing:measure_debiasing_change", strategies_only=True, short="debiasing change"))

__all__ = ["GATES", "GateContext", "GateOutcome", "GateSkipped", "GateSpec", "Measurement", "all_gates", "evaluate_gate",
           "gate_spec", "register_gate", "register_gate_module"]
