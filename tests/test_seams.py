"""The seams are real: a toy dataset and a toy backend, each a few dozen lines registered at run time,
run an audit end to end (through the session, the gates, the pytest plugin and results.json)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass

import pytest

from audit import Backend, Dataset, Prompt, register_backend, register_dataset

FRUIT = ["apple", "pear", "plum", "fig", "lime", "kiwi"]
TOOLS = ["hammer", "saw", "drill", "wrench", "chisel", "file"]


@dataclass(frozen=True)
class ToyItem:
    id: str
    word: str
    answer: str  # "fruit" | "tool"
    frame: str  # "a" | "b": the two phrasings of a question form a resampling pair

    def to_dict(self) -> dict:
        return asdict(self)


class ToyDataset(Dataset):
    """Is the word a fruit or a tool? Bias unit: the word; its bias = P(fruit | frame a) - P(fruit | frame b)."""

    def load(self, source, *, split, seed):
        words = [(w, "fruit") for w in FRUIT] + [(w, "tool") for w in TOOLS]
        return [ToyItem(f"{split}-{w}-{f}-{r}", w, a, f) for w, a in words for f in "ab" for r in range(3)]

    def options(self, item):
        return ("fruit", "tool")

    def gold(self, item):
        return item.answer

    def pair_key(self, item):
        return (item.word, item.id.rsplit("-", 1)[-1])

    def render(self, fmt, item, shots, preprompt, order=0):
        lead = "Frame A." if item.frame == "a" else "Frame B."
        return Prompt(f"{preprompt}{fmt}: ", f"{lead} A {item.word} is a")

    def map_answer(self, text, item):
        return next((o for o in self.options(item) if o in text), None)

    def summarize(self, items, selections, boot):
        return {"toy_accuracy": self.accuracy(items, selections)}

    def bias_by_unit(self, items, selections):
        out = {}
        for word in FRUIT + TOOLS:
            rates = []
            for frame in "ab":
                sel = [s for it, s in zip(items, selections) if it.word == word and it.frame == frame and s is not None]
                rates.append(sum(s == "fruit" for s in sel) / len(sel) if sel else math.nan)
            out[word] = None if any(math.isnan(r) for r in rates) else rates[0] - rates[1]
        return out


class ToyBackend(Backend):
    """Answers "fruit" for fruit, "tool" for tools, except that under frame A it calls the words of
    ``confused`` fruit whatever they are (a planted frame effect), the same in every format."""

    confused = {"hammer", "saw", "drill"}

    def __init__(self, target: str):
        self.name = f"toy:{target}"
        self.calls = 0

    def _answer(self, context: str) -> str:
        word = re.search(r"A (\w+) is a$", context).group(1)
        if "Frame A." in context and word in self.confused:
            return "fruit"
        return "fruit" if word in FRUIT else "tool"

    def loglikelihood(self, requests):
        self.calls += len(requests)
        return [-0.1 if r.continuation.strip() == self._answer(r.context) else -3.0 for r in requests]

    def generate(self, prompts, max_new_tokens=16):
        return [" " + self._answer(p) for p in prompts]

    def identity(self):
        return {"model": self.name, "rule": "toy"}


@pytest.fixture
def toy_registered():
    register_dataset("toy", ToyDataset)
    register_backend("toy", lambda target, options: ToyBackend(target))
    yield


CONFIG = """
data = "toy:anything"
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

SUITE = '''
import pytest

@pytest.mark.audit_gate("accuracy")
def test_accuracy(audit_outcome):
    assert audit_outcome.passed, audit_outcome.message

@pytest.mark.audit_gate("transfer")
def test_transfer(audit_outcome):
    assert audit_outcome.passed, audit_outcome.message

@pytest.mark.audit_gate("a_sb")
def test_a_sb_is_winobias_only(audit_outcome):
    assert audit_outcome.passed, audit_outcome.message
'''


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
