"""The ``words-rule`` backend: answers correctly, except that under frame A it calls the words of its
target (``words-rule:hammer,saw``) fruit (a planted frame effect)."""

from __future__ import annotations

import re

from audit import Backend, ModelLoadError


class WordsRule(Backend):
    def __init__(self, confused: set[str]):
        self.confused = confused

    def _answer(self, context: str) -> str:
        word = re.search(r"A (\w+) is a$", context).group(1)
        if "Frame A." in context and word in self.confused:
            return "fruit"
        return "fruit" if word in {"apple", "pear", "plum", "fig", "lime", "kiwi"} else "tool"

    def loglikelihood(self, requests):
        return [-0.1 if r.continuation.strip() == self._answer(r.context) else -3.0 for r in requests]

    def generate(self, prompts, max_new_tokens=16):
        return [" " + self._answer(p) for p in prompts]

    def identity(self):
        return {"model": "words-rule", "confused": sorted(self.confused)}


def check(target, options):
    if not re.fullmatch(r"[a-z]+(,[a-z]+)*|none", target):
        raise ModelLoadError(f"model 'words-rule:{target}': expected comma-separated lower-case words or 'none'")


def load(target, options):
    check(target, options)
    return WordsRule(set() if target == "none" else set(target.split(",")))
