"""The backend interface: what the audit asks of a model (after lm-evaluation-harness's ``LM``).

Three questions, answered by every backend the same way: the log-likelihood of a continuation
given a context, a greedy generation, and the model's identity (for provenance and the result
cache). A backend may also wrap a prompt in the model's chat template. Backends are chosen by the
model spec's scheme (``hf:`` the default, ``reference:``, ``openai-completions:``; see
``audit.backends``), each one module or folder.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Sequence

from audit.errors import ConditionUnavailable
from audit.prompts.stopping import StopRule


@dataclass(frozen=True)
class Request:
    """Score ``continuation`` after ``prefix + query``. ``prefix`` is shared by many requests (the
    instruction, pre-prompt and shots of a condition), which a backend may compute once."""

    prefix: str
    query: str
    continuation: str

    @property
    def context(self) -> str:
        return self.prefix + self.query


@dataclass(frozen=True)
class BackendOptions:
    """How to load a model; each backend reads the fields that apply to it and checks ``extra``."""

    device: str | None = None
    dtype: str | None = None
    device_map: str | None = None  # "auto": accelerate spreads a model too large for one GPU
    trust_remote_code: bool = False
    allow_pickle: bool = False
    batch_size: int | str = "auto"
    extra: dict[str, str] = field(default_factory=dict)  # --backend-option KEY=VALUE (e.g. a server's model name)


class Backend(ABC):
    """A model under audit. ``name`` is the spec the user gave (how results name the model)."""

    name: str
    #: the Jinja chat template of an instruct model, or None (chat conditions are then skipped)
    chat_template: str | None = None
    #: "cpu", "cuda", "server": provenance, and part of the cache key (kernels differ in the last bits)
    device_type: str = "cpu"

    @abstractmethod
    def loglikelihood(self, requests: Sequence[Request]) -> list[float]:
        """log P(continuation | context) for each request, in input order (natural log, summed over tokens)."""

    def loglikelihood_progressive(self, requests: Sequence[Request], on_scored) -> list[float]:
        """``loglikelihood``, calling ``on_scored(indices, scores)`` as parts of the answer are ready
        (``scores[i]`` is final for each index given), so the result cache can commit by time. The
        default answers in one piece; a backend that batches internally overrides it."""
        out = self.loglikelihood(requests)
        on_scored(list(range(len(out))), out)
        return out

    @abstractmethod
    def generate(self, prompts: Sequence[str], max_new_tokens: int = 16) -> list[str]:
        """Greedy continuations of each prompt (without the prompt), stopped at end-of-sequence."""

    def generate_until(self, prompts: Sequence[str], max_new_tokens: int, stop: StopRule) -> list[str]:
        """Greedy continuations ended by ``stop`` (``audit.prompts.stopping``): at most ``stop.tokens(max_new_tokens)``
        new tokens, each text cut where the rule says its answer ends. The default generates the whole budget
        and cuts; a backend that can stop a sequence early overrides it (the texts must be the same)."""
        return [stop.cut(text)[1] for text in self.generate(prompts, max_new_tokens=stop.tokens(max_new_tokens))]

    def generate_until_progressive(self, prompts: Sequence[str], max_new_tokens: int, stop: StopRule,
                                   on_generated) -> list[str]:
        """``generate_until``, calling ``on_generated(indices, texts)`` as texts are ready (``texts[i]`` is final for
        each index given), so the result cache can commit them while the rest are still generating. The
        default answers in one piece; a backend that batches internally overrides it."""
        out = self.generate_until(prompts, max_new_tokens, stop)
        on_generated(list(range(len(out))), out)
        return out

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """JSON-safe facts that make results reproducible (model, revision, weights hash, dtype...); no secrets."""

    def cache_key(self) -> str:
        """Keys the result cache: everything that changes a score. Default: the identity and device type."""
        return hashlib.sha256(json.dumps([self.identity(), self.device_type], sort_keys=True, default=str).encode()).hexdigest()[:32]

    def apply_chat_template(self, messages: list[dict[str, str]]) -> str:
        """The text of ``messages`` in the model's chat template, opening the assistant's turn."""
        raise ConditionUnavailable("the model has no chat template (the condition needs an instruct model)")

    def count_tokens(self, texts: Sequence[str]) -> list[int]:  # pragma: no cover - optional
        """Tokens in each text (for per-token normalisation); backends without a tokenizer say so."""
        raise ConditionUnavailable(f"backend of '{self.name}' cannot count tokens")

    def close(self) -> None:
        """Release what the backend holds (a server connection pool, GPU memory)."""

    def release_model(self) -> None:
        """Free the model's own memory (its weights in this process) once nothing more will be scored; the
        backend still answers ``identity()`` and ``cache_key()``. No-op where the model lives elsewhere."""


class WrappingBackend(Backend):
    """A backend that adds something around another (the result cache, torchrun sharding): everything it
    does not override is the inner backend's."""

    def __init__(self, inner: Backend):
        self.inner = inner
        self.name = inner.name
        self.chat_template = inner.chat_template
        self.device_type = inner.device_type

    def loglikelihood(self, requests: Sequence[Request]) -> list[float]:
        return self.inner.loglikelihood(requests)

    def generate(self, prompts: Sequence[str], max_new_tokens: int = 16) -> list[str]:
        return self.inner.generate(prompts, max_new_tokens=max_new_tokens)

    def generate_until(self, prompts: Sequence[str], max_new_tokens: int, stop: StopRule) -> list[str]:
        return self.inner.generate_until(prompts, max_new_tokens, stop)

    def identity(self) -> dict[str, Any]:
        return self.inner.identity()

    def cache_key(self) -> str:
        return self.inner.cache_key()

    def apply_chat_template(self, messages: list[dict[str, str]]) -> str:
        return self.inner.apply_chat_template(messages)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)

    def close(self) -> None:
        self.inner.close()

    def release_model(self) -> None:
        self.inner.release_model()
