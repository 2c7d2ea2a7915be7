"""What the tests' small audits write: a bias-audit.toml with a debiasing strategy, and a gate suite."""

from __future__ import annotations


def debiasing_config(data: str, bare: str, asked: str, reference: str = "asked") -> str:
    """A config over ``data``: the condition ``bare`` (format ``bare``), the debiasing reference ``reference`` and
    ``fair`` (both format ``asked``; ``fair`` with the "fair" preprompt as an instruction strategy); transfer from
    ``bare``, min_items 10, 200 resamples."""
    return f"""
data = "{data}"
transfer_from = "bare"
min_items = 10
n_resamples = 200
debiasing_reference = "{reference}"

[conditions.bare]
format = "{bare}"

[conditions.{reference}]
format = "{asked}"

[conditions.fair]
format = "{asked}"
preprompt = "fair"
strategy = "instruction"
"""


def gate_suite(*gates: str) -> str:
    """A test module with one test per gate (``test_<gate>``), each asserting that its outcome passed."""
    return "import pytest\n" + "".join(f"""
@pytest.mark.audit_gate("{gate}")
def test_{gate}(audit_outcome):
    assert audit_outcome.passed, audit_outcome.message
""" for gate in gates)
