"""Prompt formats are data: Jinja2 templates under ``templates/prompts/``, and under the user's own
directories (config key ``prompt_dirs``, ``--prompt-dir DIR``), which are searched first: a user's
``NAME.j2`` adds the format ``NAME`` (or replaces a built-in one of that name).

A template receives ``item`` (the item asked about), ``shots`` (solved examples), ``preprompt``
(text or empty) and ``split``, a marker it writes where the prefix shared by every item of a
condition ends (instructions, pre-prompt, shots), so the scorer can compute that prefix once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import jinja2

from audit.errors import ConditionUnavailable, ConfigError

from audit.paths import templates_dir

SPLIT_MARK = "\x00<query>\x00"
_USER_DIRS: tuple[Path, ...] = ()


def set_prompt_dirs(dirs: Sequence[str | Path]) -> None:
    """The user's prompt-format directories, searched before the built-in ones (``prompt_dirs``)."""
    global _USER_DIRS
    new = tuple(Path(d) for d in dirs)
    if new != _USER_DIRS:
        _USER_DIRS = new
        _environment.cache_clear()
        _template.cache_clear()


def prompt_dirs() -> list[Path]:
    """Where prompt formats are looked up, in order."""
    return [*_USER_DIRS, templates_dir() / "prompts"]


@dataclass(frozen=True)
class Prompt:
    """``prefix + query`` is the context; a candidate is scored as the continuation ``" " + candidate``."""

    prefix: str
    query: str

    @property
    def text(self) -> str:
        return self.prefix + self.query


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(d) for d in prompt_dirs()]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        autoescape=False,  # prompts are plain text; the HTML report has its own escaping environment
    )


def prompt_formats() -> list[str]:
    # bbq_*.j2 are BBQ formats (audit/datasets/bbq/prompts.py), not WinoBias ones
    return sorted({p.stem for d in prompt_dirs() for p in d.glob("*.j2") if not p.stem.startswith(("_", "bbq_"))})


def load_template(name: str, known: Callable[[], Sequence[str]], label: str = "prompt format") -> jinja2.Template:
    """The Jinja2 template ``NAME.j2`` of the first prompt directory that has it (``prompt_dirs()``); an
    unknown name is one line listing ``known()``."""
    try:
        return _environment().get_template(f"{name}.j2")
    except jinja2.TemplateNotFound:
        raise ConfigError(f"unknown {label} '{name}' (known: {', '.join(known())})") from None


@functools.lru_cache(maxsize=None)
def _template(name: str) -> jinja2.Template:
    return load_template(name, prompt_formats)


def render_prompt(fmt: str, item: Any, shots: Sequence[Any] = (), preprompt: str = "") -> Prompt:
    text = _template(fmt).render(item=item, shots=list(shots), preprompt=preprompt, split=SPLIT_MARK)
    if text.count(SPLIT_MARK) != 1:
        raise ConfigError(f"prompt format '{fmt}' must write {{{{ split }}}} exactly once")
    prefix, query = text.split(SPLIT_MARK)
    return Prompt(prefix, query.rstrip(" "))


def apply_chat_template(model, prompt: Prompt) -> Prompt:
    """Wrap a prompt in an instruct model's chat template.

    ``model`` is a backend (``audit.backends.Backend``) or a tokenizer with a chat template. The
    query's last line (the answer lead, e.g. ``Answer: The``) opens the assistant turn; the rest is
    the user message. The shared-prefix split survives because the marker is placed in the user
    message before the template is applied.
    """
    if not getattr(model, "chat_template", None):
        raise ConditionUnavailable("the model's tokenizer has no chat template (the condition needs an instruct model)")
    marked = prompt.prefix + SPLIT_MARK + prompt.query
    cut = marked.rfind("\n")  # body: the lines before the last (empty for one line); lead: the last line
    body, lead = marked[:max(cut, 0)], marked[cut + 1:]
    if not body:
        raise ConfigError("a chat prompt needs a query with an answer line after the question")
    messages = [{"role": "user", "content": body}]
    if hasattr(model, "loglikelihood"):  # a backend (audit.backends.Backend): its own chat wrapping
        text = model.apply_chat_template(messages)
    else:  # a tokenizer
        text = model.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if text.count(SPLIT_MARK) != 1:
        raise ConfigError("the model's chat template altered the prompt; cannot find the shared prefix")
    prefix, query = text.split(SPLIT_MARK)
    return Prompt(prefix, query + lead)


def continuation(candidate: str) -> str:
    """The scored continuation for an answer option (after a prompt that ends before the answer)."""
    return " " + candidate
