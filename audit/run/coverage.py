"""Is the audit complete? A verdict counts only when every gate the configuration asks for was decided.

The pytest plugin reports what the suite holds (``Coverage``: the gate tests collected, the ones a
``-k``/``-m``/``--deselect`` removed, the tests that say they replace a gate, whether the run was
interrupted or only collected); :func:`assess` compares that with the gates the session requires
and the outcomes it recorded. The assessment goes into results.json (``coverage``) and decides
the exit code (``audit.run.verdict``).

A gate is *required* when the config enables it, it applies to the run's dataset (and, for a
regression gate, an approved run was given) and it applies to at least one of the config's
conditions. A suite covers a required gate with a test marked ``@pytest.mark.audit_gate(NAME)``,
or replaces it explicitly with a test marked ``@pytest.mark.audit_replaces(NAME, reason=...)``;
``[gates.NAME] enabled = false`` in the config drops it from the audit altogether.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from audit.run.session import AuditSession

DECIDED = ("pass", "fail", "waived")


@dataclass
class Coverage:
    """What the pytest run held, gathered by the plugin. Test ids, grouped by gate name."""

    selected: dict[str, list[str]] = field(default_factory=dict)  # audit_gate tests that were to run
    deselected: dict[str, list[str]] = field(default_factory=dict)  # audit_gate tests removed by -k/-m/--deselect
    replaced: dict[str, list[dict]] = field(default_factory=dict)  # gate -> [{test, reason, outcome}]
    collect_only: bool = False
    interrupted: bool = False
    collection_errors: list[str] = field(default_factory=list)

    def add(self, bucket: dict, gate: str, value) -> None:
        bucket.setdefault(gate, []).append(value)


def required_gates(session: "AuditSession") -> list[str]:
    """The gates this run must decide (see the module docstring), in config order."""
    out = []
    for gate in session.config.gates:
        if session.gate_inapplicable(gate) is None and session.config.condition_names_for(gate):
            out.append(gate)
    return out


def assess(session: "AuditSession", coverage: Coverage) -> dict:
    """The ``coverage`` record of results.json: which gates were required, decided, deselected,
    replaced or missing, and why the run is incomplete (``complete`` false, ``reasons``)."""
    required = required_gates(session)
    by_gate: dict[str, list[str]] = {}
    for outcome in session.outcomes:
        by_gate.setdefault(outcome.metric, []).append(outcome.status)
    decided = sorted(g for g, statuses in by_gate.items() if any(s in DECIDED for s in statuses))
    decided_tests = {o.test for o in session.outcomes}
    undecided_tests = sorted(t for g, tests in coverage.selected.items() if g in required for t in tests if t not in decided_tests)
    missing = [g for g in required if g not in coverage.selected and g not in coverage.replaced and g not in coverage.deselected]
    deselected_only = [g for g in required if g in coverage.deselected and g not in coverage.selected and g not in coverage.replaced]
    reasons: list[str] = []
    if coverage.interrupted:
        reasons.append("the run was interrupted before it finished")
    if coverage.collection_errors:
        reasons.append(f"{len(coverage.collection_errors)} test file(s) could not be collected")
    if coverage.collect_only:
        reasons.append("tests were only collected (--collect-only), not run")
    if missing:
        reasons.append(f"the suite has no test for gate(s) {', '.join(missing)} (mark a test @pytest.mark.audit_gate(NAME), "
                       "mark a custom test @pytest.mark.audit_replaces(NAME, reason=...), or set enabled = false for the gate)")
    n_deselected = sum(len(v) for v in coverage.deselected.values())
    if n_deselected:
        whole = f"; no selected test decides {', '.join(deselected_only)}" if deselected_only else ""
        reasons.append(f"the test selection left out {n_deselected} gate test(s){whole}")
    if undecided_tests and not coverage.collect_only:
        reasons.append(f"{len(undecided_tests)} selected gate test(s) decided nothing ({undecided_tests[0]}"
                       + (", ..." if len(undecided_tests) > 1 else "") + ")")
    if not decided and not reasons:
        reasons.append("no audit gate was decided (every gate was skipped)" if session.outcomes else "no audit gate was decided")
    elif not decided:
        reasons.append("no audit gate was decided")
    return {
        "complete": not reasons,
        "reasons": reasons,
        "gates_required": required,
        "gates_decided": decided,
        "gates_missing": missing,
        "gates_replaced": {g: list(v) for g, v in coverage.replaced.items()},
        "tests_deselected": {g: sorted(v) for g, v in coverage.deselected.items()},
        "tests_undecided": [] if coverage.collect_only else undecided_tests,
        "interrupted": coverage.interrupted,
    }


def verdict(session: "AuditSession", assessment: dict) -> str:
    """``fail`` when any decided gate (or a test replacing a gate) failed, else ``incomplete`` when
    the audit is incomplete, else ``inconclusive`` when a gate could not decide and the config counts
    that against the audit (``inconclusive = "fail"``), else ``pass``. A failure found is a finding
    even in an incomplete run."""
    failed = any(o.status == "fail" for o in session.outcomes) or any(
        r.get("outcome") == "failed" for rs in assessment["gates_replaced"].values() for r in rs
    )
    if failed:
        return "fail"
    if not assessment["complete"]:
        return "incomplete"
    if session.config.inconclusive == "fail" and any(o.status == "inconclusive" for o in session.outcomes):
        return "inconclusive"
    return "pass"


def incomplete_line(assessment: dict) -> str:
    """The one line the CLI prints for an incomplete audit."""
    return "the audit is incomplete, so there is no verdict: " + "; ".join(assessment["reasons"])
