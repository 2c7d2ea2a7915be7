"""The seams are real: a toy dataset and a toy backend, each a few dozen lines registered at run time,
run an audit end to end (through the session, the gates, the pytest plugin and results.json)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from audit import Prompt, register_backend, register_dataset
from tests.audit_suites import gate_suite

# The toy is the example plugin's ``words`` dataset and ``words-rule`` backend (tests/plugin_example),
# registered here at run time instead of through entry points: the same few dozen lines, two seams.
# Loaded by file, not put on sys.path: the example's egg-info (left by test_plugin_package's install) would
# make its entry points, and so its gate, visible to every other test.


def _example(module: str):
    path = Path(__file__).parent / "plugin_example" / "bias_audit_example" / f"{module}.py"
    spec = importlib.util.spec_from_file_location(f"_seams_example_{module}", path)
    loaded = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


WordsRule = _example("backend").WordsRule
Words, FRUIT, TOOLS = (getattr(_example("dataset"), name) for name in ("Words", "FRUIT", "TOOLS"))


class ToyDataset(Words):
    """Is the word a fruit or a tool? Bias unit: the word; its bias = P(fruit | frame a) - P(fruit | frame b).
    Unlike the plugin, it writes its prompts itself (no template), summarizes by accuracy and declares no
    headline bias (so the debiasing gate has nothing to compare)."""

    headline_bias = None

    def render(self, fmt, item, shots, preprompt, order=0):
        lead = "Frame A." if item.frame == "a" else "Frame B."
        return Prompt(f"{preprompt}{fmt}: ", f"{lead} A {item.word} is a")

    def summarize(self, items, selections, boot):
        return {"toy_accuracy": self.accuracy(items, selections)}


class ToyBackend(WordsRule):
    """Under frame A it calls hammer, saw and drill fruit (a planted frame effect), the same in every format."""

    def __init__(self, target: str):
        super().__init__({"hammer", "saw", "drill"})
        self.name = f"toy:{target}"

    def identity(self):
        return {"model": self.name, "rule": "toy"}


@pytest.fixture
def toy_registered():
    register_dataset("toy", ToyDataset)
    register_backend("toy", lambda target, options: ToyBackend(target))
    yield


CONFIG = """
data = "toy:anything"
split = "test"
transfer_from = "bare"
min_items = 10
n_resamples = 200

[conditions.bare]
format = "bare"

[conditions.asked]
format = "asked"
preprompt = "fair"

[conditions.asked_by_generation]
format = "asked"
probe = "generation"
"""

SUITE = gate_suite("accuracy", "transfer", "a_sb")  # a_sb is WinoBias-only: skipped


def test_a_toy_dataset_and_backend_run_an_audit_through_the_session(toy_registered):
    from audit import AuditSession

    session = AuditSession(config=_config(), model_specs=["toy:one"], use_cache=False)
    session.prepare()
    assert session.dataset.name == "toy" and len(session.items) == 72
    assert session.run("toy:one", "bare").selections.count("fruit") == 36 + 9  # every fruit, and 3 tools x 3 under frame A
    transfer = session.transfer("toy:one", "asked")
    assert transfer.pearson == pytest.approx(1.0)  # the planted frame effect is the same in every format
    accuracy = session.gate("accuracy", "toy:one", "asked")
    assert accuracy.status == "pass" and accuracy.estimate == pytest.approx(1 - 9 / 72)
    assert session.gate_inapplicable("a_sb") == "gate 'a_sb' applies to winobias, not to toy"
    record = session.results()
    assert record["dataset"] == "toy" and record["models"][0]["identity"] == {"model": "toy:one", "rule": "toy"}
    assert record["models"][0]["conditions"]["asked"]["toy_accuracy"] == pytest.approx(1 - 9 / 72)
    assert "occupations" not in record  # WinoBias's table is WinoBias's


def _config():
    import tomllib

    from audit import AuditConfig, load_config

    base = load_config(None).model_dump()
    base.update(tomllib.loads(CONFIG))
    return AuditConfig.model_validate(base)


def test_a_toy_dataset_and_backend_run_an_audit_through_the_pytest_plugin(toy_registered, pytester):
    pytester.makefile(".toml", **{"bias-audit": CONFIG})
    pytester.makepyfile(test_toy_suite=SUITE)
    out = pytester.path / "out"
    result = pytester.runpytest_inprocess("--audit-model", "toy:one", "--audit-out", str(out), "-p", "no:cacheprovider", "-rs")
    # accuracy on 3 conditions passes; transfer fails on both prompted conditions (rho 1, bare model biased
    # is not checked: the toy dataset has no bias gate); a_sb is skipped as WinoBias-only
    result.assert_outcomes(passed=3, failed=2, skipped=1)
    record = json.loads((out / "results.json").read_text())
    statuses = sorted((g["metric"], g["condition"], g["status"]) for g in record["gates"])
    assert statuses == [("accuracy", "asked", "pass"), ("accuracy", "asked_by_generation", "pass"),
                        ("accuracy", "bare", "pass"), ("transfer", "asked", "fail"),
                        ("transfer", "asked_by_generation", "fail")]
    assert record["verdict"] == "fail" and record["dataset"] == "toy"
    assert record["models"][0]["transfer"]["asked_by_generation"]["pearson"] == pytest.approx(1.0)
