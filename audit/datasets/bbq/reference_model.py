"""``reference-bbq:NAME``: BBQ reference models with a planted, known bias. A PLANTED-RULE BACKEND,
NOT A NEURAL LANGUAGE MODEL: it implements the ``Backend`` interface by computing each answer's
log-likelihood from a written rule, so that the audit's BBQ metrics have ground truth.

How it reads a prompt. Like a reader it sees only the text: it takes the prompt's last question
(``Question: ...`` or ``Q: ...`` line) and finds the loaded BBQ item whose context ends the text
before it (``audit.datasets.bbq.index``; the BBQ dataset registers what it loads). Knowing the item,
it knows the correct answer, which answer reflects the stereotype (``biased_index``, by polarity)
and the item's category and template. A prompt that is not about a loaded BBQ item is an error.

The rule (logits over the item's three answers, then a log-softmax):

* the correct answer gets ``MARGIN`` (2.0): the model reads well;
* the biased answer gets ``strength[category] * w(template)``, where ``w`` is drawn once per template,
  seeded, uniform in [0, 2]: graded per-template bias (positive everywhere it is planted), so
  per-template selection bias varies and transfer can be measured;
* every answer gets seeded noise, normal with sd ``NOISE`` (1.0), fixed per item and answer and the
  same in every prompt format: the model is equally biased in every format (full transfer);
* when the prompt mentions stereotypes (``stereotyp``: the debiasing pre-prompts, or an explanation
  the model wrote about them), the bias term is halved (``DEBIAS_FACTOR``): a known debiasing effect.

Models: ``reference-bbq:planted`` has strength 2.5 for Age (prefers the old person in negative
questions and the young one in non-negative ones) and 2.0 for Physical_appearance, none for every
other category (Religion included); ``reference-bbq:fair`` has none anywhere.

Generation: the highest-scoring answer, as " <answer>" (chain-of-thought formats: a sentence ending
"So the answer is <answer>."; an explanation format: a sentence about stereotypes).
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
import re
from pathlib import Path
from typing import Any, Sequence

from audit.backends.base import Backend, BackendOptions, Request
from audit.errors import AuditError, ModelLoadError

MARGIN = 2.0
NOISE = 1.0
DEBIAS_FACTOR = 0.5
NO_ANSWER = -30.0  # log-likelihood of a continuation that is none of the answers
PLANTED: dict[str, dict[str, float]] = {
    "planted": {"Age": 2.5, "Physical_appearance": 2.0},
    "fair": {},
}
_QUESTION = re.compile(r"(?:^|\n)(?:Question|Q): ([^\n]*)")
CHAT_TEMPLATE = "<|user|>\n{content}\n<|assistant|>\n"


def _uniform(*key: object) -> random.Random:
    return random.Random(hashlib.sha256(repr(key).encode()).hexdigest())


@functools.lru_cache(maxsize=None)
def item_noise(category: str, example_id: int) -> tuple[float, float, float]:
    """The fixed noise on each of an item's three answers (the same in every prompt format)."""
    return tuple(_uniform("noise", category, example_id, i).gauss(0.0, NOISE) for i in range(3))  # type: ignore[return-value]


@functools.lru_cache(maxsize=None)
def template_weight(category: str, question_index: int) -> float:
    """The planted strength multiplier of a template, uniform in [0, 2], seeded."""
    return _uniform("template", category, question_index).uniform(0.0, 2.0)


def planted_strength(name: str, category: str) -> float:
    return PLANTED[name].get(category, 0.0)


class PlantedBBQ(Backend):
    device_type = "cpu"
    chat_template = CHAT_TEMPLATE

    def __init__(self, variant: str):
        self.variant = variant
        self.name = f"reference-bbq:{variant}"
        self._memo: dict[str, tuple[Any, list[float]]] = {}

    # --- the rule --------------------------------------------------------------------------------
    def _item(self, text: str):
        from audit.datasets.bbq.index import lookup

        found = list(_QUESTION.finditer(text))
        item = lookup(found[-1].group(1), text[: found[-1].start()]) if found else None
        if item is None:
            raise AuditError(f"{self.name} answers only prompts about loaded BBQ items (run it with --data bbq:DIR); "
                             f"no BBQ question found in: {text[-120:]!r}")
        return item

    def logits(self, text: str) -> tuple[Any, list[float]]:
        if text not in self._memo:
            if len(self._memo) > 4096:
                self._memo.clear()
            self._memo[text] = self._logits(text)
        return self._memo[text]

    def _logits(self, text: str) -> tuple[Any, list[float]]:
        item = self._item(text)
        bias = planted_strength(self.variant, item.category) * template_weight(item.category, item.question_index)
        if "stereotyp" in text.lower():
            bias *= DEBIAS_FACTOR
        noise = item_noise(item.category, item.example_id)
        return item, [noise[i] + MARGIN * (i == item.label) + bias * (i == item.biased_index) for i in range(3)]

    # --- Backend ---------------------------------------------------------------------------------
    def loglikelihood(self, requests: Sequence[Request]) -> list[float]:
        scores = []
        for r in requests:
            item, z = self.logits(r.context)
            norm = math.log(sum(math.exp(v) for v in z))
            answer = r.continuation.strip()
            scores.append(z[item.answers.index(answer)] - norm if answer in item.answers else NO_ANSWER)
        return scores

    def generate(self, prompts: Sequence[str], max_new_tokens: int = 16) -> list[str]:
        out = []
        for text in prompts:
            tail = text.rstrip().splitlines()[-1] if text.strip() else ""
            if tail.startswith("Explanation:"):
                out.append(" Answering from a stereotype about a group would rely on an invalid assumption; "
                           "only what the context says counts.")
                continue
            item, z = self.logits(text)
            answer = item.answers[max(range(3), key=z.__getitem__)]
            if "step by step" in tail:
                out.append(f" The context is about {item.answers[0]} and {item.answers[1]}. So the answer is {answer}.")
            else:
                out.append(f" {answer}")
        return out

    def identity(self) -> dict[str, Any]:
        rule = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
        return {"model": self.name, "source": "reference", "kind": "planted-rule backend (not a neural LM)",
                "rule_sha256": rule, "planted": PLANTED[self.variant]}

    def apply_chat_template(self, messages: list[dict[str, str]]) -> str:
        return "".join(CHAT_TEMPLATE.format(content=m["content"]) for m in messages)


def check_reference_bbq(target: str, options: BackendOptions) -> None:
    if target not in PLANTED:
        raise ModelLoadError(f"model 'reference-bbq:{target}': no such BBQ reference model (known: "
                             f"{', '.join('reference-bbq:' + n for n in PLANTED)})")


def load_reference_bbq(target: str, options: BackendOptions) -> PlantedBBQ:
    check_reference_bbq(target, options)
    return PlantedBBQ(target)
