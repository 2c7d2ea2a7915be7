"""The gate contract: gates see only ``audit.gates.contract.GateContext``; each dataset registers its own
gates and declares its headline bias and how recorded items pair across runs."""

from __future__ import annotations

import tomllib

import pytest

from audit import all_gates, AuditConfig, GateContext, get_dataset, load_config, register_backend, register_dataset
from test_seams import FRUIT, TOOLS, ToyBackend, ToyDataset
from tests.audit_suites import debiasing_config


class ToyWithoutHeadline(ToyDataset):
    """No headline bias: the debiasing gate cannot apply (it must say so, not crash)."""


class ToyWithHeadline(ToyDataset):
    headline_bias = "fruit_rate"

    def per_seed(self, items, selections):
        answered = [s for s in selections if s is not None]
        return {"fruit_rate": sum(s == "fruit" for s in answered) / len(answered)}


def _session(name, factory):
    from audit import AuditSession

    register_dataset(name, factory)
    register_backend("toy", lambda target, options: ToyBackend(target))
    base = load_config(None).model_dump()
    base.update(tomllib.loads(debiasing_config(f"{name}:anything", bare="bare", asked="asked", reference="zero_shot")))
    base["gates"]["debiasing_no_increase"] = {"threshold": 0.0, "bound": "lower", "rationale": "no worse"}
    session = AuditSession(config=AuditConfig.model_validate(base), model_specs=["toy:one"], use_cache=False)
    session.prepare()
    for condition in session.config.conditions:
        session.run("toy:one", condition)
    return session


def test_a_dataset_without_a_headline_bias_skips_the_debiasing_gate_with_the_reason():
    session = _session("toy_no_headline", ToyWithoutHeadline)
    outcome = session.gate("debiasing_no_increase", "toy:one", "fair")
    assert outcome.status == "skipped"
    assert "declares no headline bias" in outcome.message
    assert session.results()["models"][0]["debiasing"]["headline_bias"] is None


def test_the_debiasing_gate_reads_the_datasets_declared_headline_bias():
    session = _session("toy_headline", ToyWithHeadline)
    outcome = session.gate("debiasing_no_increase", "toy:one", "fair")
    assert outcome.status in {"pass", "fail", "inconclusive"}
    # the toy backend answers alike under both prompts: the fruit rate does not change
    assert outcome.estimate == pytest.approx(0.0)
    assert "fruit_rate" in outcome.message
    assert session.results()["models"][0]["debiasing"]["headline_bias"] == "fruit_rate"


def test_the_run_implements_the_gate_contract_and_gates_do_not_import_the_run():
    import ast
    import pathlib

    from audit.run.context import RunGateContext

    session = _session("toy_contract", ToyWithHeadline)
    assert isinstance(RunGateContext(session, "toy:one", "bare"), GateContext)
    for path in pathlib.Path("audit/gates").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith(("audit.run", "audit.datasets")), (path, node.module)


def test_each_dataset_registers_its_own_gates_and_the_neutral_registry_holds_none():
    import audit.gates as gates_pkg

    source = open(gates_pkg.__file__).read()
    assert "winobias" not in source.lower() and "bbq" not in source.lower()
    specs = all_gates()
    assert specs["a_sb"].datasets == ("winobias",) and specs["bbq_s_amb"].datasets == ("bbq",)
    assert specs["a_sb"].measure_fn().__module__ == "audit.datasets.winobias.gates"


def test_recorded_items_pair_in_each_datasets_own_units():
    wino, bbq = get_dataset("winobias"), get_dataset("bbq")
    he = {"sentence": "The nurse asked the doctor because he knew.", "pronoun": "he", "referent": "doctor"}
    she = {"sentence": "The nurse asked the doctor because she knew.", "pronoun": "she", "referent": "doctor"}
    assert wino.record_pair_key("1", he) == wino.record_pair_key("2", she)
    a = {"category": "Age", "example_id": 8}
    b = {"category": "Age", "example_id": 11}
    c = {"category": "Age", "example_id": 12}
    assert bbq.record_pair_key("x", a) == bbq.record_pair_key("y", b) != bbq.record_pair_key("z", c)
    assert ToyDataset().record_pair_key("item-7", {"word": "fig"}) == "item-7"
    assert len(FRUIT) == len(TOOLS)


def _config_with(**changes):
    base = load_config(None).model_dump()
    base.update(changes)
    return AuditConfig.model_validate(base)


def test_one_place_decides_holm_and_waivers():
    from audit import decide, Measurement
    from audit.gates.decide import waive

    config = _config_with(correction="holm", min_items=1)
    failing = Measurement(0.5, (0.4, 0.6))  # far above any a_sb threshold: shown beyond it
    names = ["c1", "c2", "c3"]

    def over_conditions(ps):  # each condition's exact one-sided p of "the effect is within the limit"
        return lambda: [(c, Measurement(0.5, (0.4, 0.6), p_beyond=p)) for c, p in zip(names, ps)]

    kept = decide("a_sb", config, model="m", condition="c2", measured=failing, skip=None, n_answered=100,
                  holm_measurements=over_conditions([0.001, 0.01, 0.005]))
    assert kept.status == "fail"  # Holm: 0.01 (0.005 x 2 before it) <= 0.025, the interval's one-sided level
    relaxed = decide("a_sb", config, model="m", condition="c2", measured=failing, skip=None, n_answered=100,
                     holm_measurements=over_conditions([0.001, 0.02, 0.015]))
    assert relaxed.status == "inconclusive" and "adjusted p = 0.03 > 0.025" in relaxed.message
    uncorrected = decide("a_sb", _config_with(correction="none", min_items=1), model="m", condition="c2",
                         measured=failing, skip=None, n_answered=100, holm_measurements=over_conditions([0.001, 0.02, 0.015]))
    assert uncorrected.status == "fail"
    # without an exact p the one-sided p is read off each condition's interval: three far-beyond intervals stay fails
    read_off = decide("a_sb", config, model="m", condition="c2", measured=failing, skip=None, n_answered=100,
                      holm_measurements=lambda: [(c, failing) for c in names])
    assert read_off.status == "fail"
    skipped = decide("a_sb", config, model="m", condition="c2", measured=None, skip="no data", n_answered=0)
    assert skipped.status == "skipped" and skipped.message == "no data"
    waive(kept, "known issue #12", skipped=True)
    assert kept.status == "waived" and kept.waiver_reason == "known issue #12"
