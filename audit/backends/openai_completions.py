"""Audit a model behind an OpenAI-compatible completions server (vLLM, SGLang, llama-cpp-python).

Model spec ``openai-completions:http://host:8000/v1`` plus the served model's name and a tokenizer
(a local directory, a hub id, or a GGUF file). Requests are tokenised exactly as the HF backend
does (``request_tokens``, lm-eval's rules) and sent as lm-eval's ``local-completions`` sends them
(``echo: true, logprobs: 1, max_tokens: 1, temperature: 0``): as token ids where the server
accepts them, as text otherwise; every echoed token is checked against ours (``openai_wire``).

Scoring: by echo, lm-eval's way, exact and independent of request order, wherever the server echoes
prompt log-probabilities that pass the probe below (vLLM, SGLang, llama-cpp-python with BOS). Where it
cannot (llama.cpp's C++ ``llama-server`` has no echo; llama-cpp-python without BOS scores one position
off), ``score_by=auto`` scores a continuation by forcing the server to generate it (a token-id grammar;
``openai_forced``) if that passes its own probe. ``score_by=forced`` asks for it everywhere: on
llama-cpp-python's server 5-14x faster than echo (it formats a few tokens instead of the whole prompt),
but llama.cpp's one-token kernels round differently, so scores differ from echo's by up to ~0.2 nats
(the same choices in our tests) and by ~0.01 nats with the sending order (docs/performance.md).

Before the first echo request a probe checks that the server's prompt log-probabilities sit where its
echoed tokens say: the greedy next token ``g`` after a short prompt ``P`` is asked for without echo,
then ``P + g`` is echoed, and the echoed entry of ``g`` must carry the log-probability the server
generated it with. Servers that score one position off when the prompt does
not start with BOS (llama-cpp-python's server, by echo) are refused with one line.

HTTP: async (httpx) with at most ``concurrency`` requests in flight (chosen from the server's answers
unless set, ``openai_tuning``), several prompts per request where the server accepts a list, prompts
sharing a prefix sent one after another, llama.cpp's ``cache_prompt`` asked for where the server is
llama.cpp's, a timeout per request, retries with exponential backoff on connection errors and 5xx
only; any other error is one line. Scoring and generation requests go through the same client. A
server that puts BOS in front of prompts itself is recognised by its token count (``server_bos``).
The API key comes from the environment only (``api_key_env``, else ``BIAS_AUDIT_API_KEY``, else
``OPENAI_API_KEY``) and never appears in ``identity()``, errors or logs.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import math
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import parse_qsl, unquote, urlsplit

from audit.prompts.stopping import StopRule
from audit.errors import ConfigError, ModelLoadError
from audit.results.redaction import private_spec, public_spec, register_secret
from audit.backends.base import Backend, BackendOptions
from audit.backends.hf.tokenization import _encode_many, _prefix_token_id, _split_spaces, request_tokens
from .openai_forced import ForcedScoring
from .openai_http import HTTPStatusError, Transport, api_key
from .openai_options import _settings
from .openai_tuning import FLOOR, LEVELS, choose_concurrency, llama_cpp_slots, prefix_order, rates_in_flight
from .openai_wire import (
    ServerError, check_alignment, choices_in_order, completion_body, continuation_logprob, generated_entry,
    generated_text, parse_echo, shown, strip_credentials,
)

SPEC_PREFIX = "openai-completions:"
SCORE_BY = ("auto", "forced", "echo")  # how a continuation is scored (auto: echo, forced where echo is refused)
PROBE_PROMPTS = (
    "The capital of France is Paris. The capital of Italy is",
    "Sentence: The doctor phoned the nurse because she was late.\nQuestion: Who does \"she\" refer to?\nAnswer: The",
    "Monday, Tuesday, Wednesday,",
)


def load_tokenizer(spec: str):
    """A transformers tokenizer from a directory, a hub id or a ``.gguf`` file (remote code never runs)."""
    from transformers import AutoTokenizer

    path = Path(spec).expanduser()
    try:
        if path.suffix == ".gguf":
            if not path.is_file():
                raise ModelLoadError(f"tokenizer '{spec}': no such GGUF file")
            return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        return AutoTokenizer.from_pretrained(spec)
    except ModelLoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure inside from_pretrained is an unusable tokenizer
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelLoadError(f"cannot load tokenizer '{spec}': {first}") from None


class OpenAICompletionsBackend(ForcedScoring, Backend):
    """Log-likelihoods and greedy generations from an OpenAI-compatible ``/v1/completions`` server."""

    device_type = "server"

    def __init__(self, base_url: str, tokenizer, *, model_name: str | None = None, tokenizer_name: str | None = None,
                 api_key_env: str | None = None, concurrency: int | None = None, timeout: float = 120.0, add_bos: bool = False,
                 batch_size: int = 16, max_retries: int = 4, backoff: float = 0.5, extra_body: dict | None = None,
                 deadline: float | None = None, score_by: str = "auto"):
        if score_by not in SCORE_BY:
            raise ConfigError(f"openai-completions score_by={score_by!r}: expected one of {', '.join(SCORE_BY)}")
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"model spec '{SPEC_PREFIX}{strip_credentials(base_url)}': "
                              "expected a server URL such as http://host:8000/v1")
        try:
            parts.port
        except ValueError:
            raise ConfigError(f"model spec '{SPEC_PREFIX}{strip_credentials(base_url)}': the port is not a number") from None
        auth = (unquote(parts.username or ""), unquote(parts.password or "")) if parts.username or parts.password else None
        for secret in auth or ():
            register_secret(secret)
        params = parse_qsl(parts.query, keep_blank_values=True)  # e.g. ?api_key=KEY, sent with every request
        public_spec(SPEC_PREFIX + base_url)  # registers its secret parameters
        self.base_url = strip_credentials(base_url) + ("" if parts.path.strip("/") else "/v1")
        self.url = self.base_url
        self.where = f"server {self.url}"
        self.tokenizer = tokenizer
        self.tokenizer_name = tokenizer_name or getattr(tokenizer, "name_or_path", None) or type(tokenizer).__name__
        self.model_name = model_name
        self._name: str | None = None
        self.add_bos = add_bos
        self.batch_size = max(1, int(batch_size))
        self.extra_body = dict(extra_body or {})  # server-specific fields, e.g. {"repeat_penalty": 1.0} for llama.cpp
        # requests in flight: the user's number, else chosen by the start-up probe (up to LEVELS[-1] while it measures)
        self.concurrency = max(1, int(concurrency)) if concurrency is not None else FLOOR
        self.tuning: dict[str, Any] = {"concurrency_from": "user" if concurrency is not None else None,
                                       "rates_in_flight": [], "llama_cpp_slots": None, "forced_refused": None}
        self.score_by = score_by
        self.forced = False  # continuations scored by forcing the server to generate them (decided by the probe)
        self.http = Transport(self.base_url, where=self.where, api_key=api_key(api_key_env),
                              concurrency=self.concurrency if concurrency is not None else LEVELS[-1],
                              timeout=timeout, max_retries=max_retries, backoff=backoff, auth=auth, params=params,
                              deadline=deadline)
        self.bos_id = getattr(tokenizer, "bos_token_id", None)
        self._pid = _prefix_token_id(tokenizer)
        self.token_ids: bool | None = None  # does the server take prompts as token ids? (probed)
        self._served: list[dict] = []
        self._version: str | None = None
        self._checked = False
        self.server_bos = False  # the server puts a BOS in front of prompts that lack one (a GGUF's add_bos_token)
        self.stats = self.http.stats  # http_requests, retries; requests and generated added here

    @classmethod
    def from_spec(cls, spec: str, *, model_name: str | None = None, tokenizer: Any = None, api_key_env: str | None = None,
                  concurrency: int | None = None, timeout: float = 120.0, **options) -> "OpenAICompletionsBackend":
        """``openai-completions:URL`` with a tokenizer (object, directory, hub id or .gguf path)."""
        if not spec.startswith(SPEC_PREFIX):
            raise ConfigError(f"model spec '{spec}' does not start with '{SPEC_PREFIX}'")
        if tokenizer is None:
            raise ConfigError(f"model spec '{SPEC_PREFIX}...' needs a tokenizer (a directory, hub id or .gguf file)")
        name = tokenizer if isinstance(tokenizer, str) else None
        tok = load_tokenizer(tokenizer) if isinstance(tokenizer, str) else tokenizer
        return cls(spec[len(SPEC_PREFIX):], tok, model_name=model_name, tokenizer_name=name, api_key_env=api_key_env,
                   concurrency=concurrency, timeout=timeout, **options)

    # ------------------------------------------------------------------ interface

    @property
    def name(self) -> str:
        return self._name or f"{self.model_name or '?'} @ {self.url}"

    @name.setter
    def name(self, value: str) -> None:  # the registry names a backend by the spec the user gave
        self._name = value

    @property
    def chat_template(self) -> str | None:
        return getattr(self.tokenizer, "chat_template", None)

    def apply_chat_template(self, messages: list[dict[str, str]]) -> str:
        if not self.chat_template:
            return super().apply_chat_template(messages)
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def count_tokens(self, texts) -> list[int]:
        return [len(ids) for ids in self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    def identity(self) -> dict:
        """What the scores depend on (the result-cache key): server, served model, tokenizer, request shape."""
        self.check()
        vocab = json.dumps(self.tokenizer.get_vocab(), sort_keys=True).encode()
        return {
            "backend": "openai-completions", "server": self.url, "model": self.model_name,
            "served_models": [m.get("id") for m in self._served], "owned_by": self._owner(),
            "server_version": self._version, "tokenizer": self.tokenizer_name,
            "tokenizer_sha256": hashlib.sha256(vocab).hexdigest()[:16], "add_bos": self.add_bos,
            "server_adds_bos": self.server_bos,
            "prompt_as": "token_ids" if self.token_ids else "text",
            "scored_by": "forced" if self.forced else "echo",
            "request": {k: v for k, v in self.extra_body.items()},
        }

    def loglikelihood(self, requests: Sequence) -> list[float]:
        """log P(continuation | context) per request (``request.context``, ``request.continuation``)."""
        requests = list(requests)
        if not requests:
            return []
        self.tune()
        prepared = [self._prepare(r.context, r.continuation) for r in requests]
        keys = [(tuple(c), tuple(k), t, n) for c, k, t, n in prepared]
        jobs = prefix_order(dict.fromkeys(keys))
        score = self._score_forced if self.forced else self._score_echo
        scores = self.http.run(lambda client: score(client, jobs))
        by_job = dict(zip(jobs, scores))
        self.stats["requests"] += len(requests)
        return [by_job[key] for key in keys]

    def generate_until(self, prompts: Sequence[str], max_new_tokens: int, stop: StopRule) -> list[str]:
        """The server stops at the rule's stop strings (OpenAI ``stop``); the answer sentence and the cut are ours."""
        texts = self.generate(prompts, stop.tokens(max_new_tokens), stop_strings=stop.strings)
        return [stop.cut(text)[1] for text in texts]

    def generate(self, prompts: Sequence[str], max_new_tokens: int = 16, *, stop_strings: Sequence[str] = ()) -> list[str]:
        """Greedy continuations (``temperature: 0``) of each prompt, tokenised as the HF backend does."""
        prompts = list(prompts)
        if not prompts:
            return []
        self.tune()
        wire = [self._encode_prompt(p) for p in prompts]

        async def run(client):
            async def one(batch):
                body = completion_body(self.model_name, self._batch_prompt(batch), max_tokens=max_new_tokens,
                                       echo=False, logprobs=None, extra=self.extra_body)
                if stop_strings:
                    body["stop"] = list(stop_strings)
                resp = await client.post("/completions", body)
                return [generated_text(c, self.where) for c in choices_in_order(resp, len(batch), self.where)]
            return await self._gather([wire[i:i + self.batch_size] for i in range(0, len(wire), self.batch_size)], one)

        out = self.http.run(run)
        self.stats["generated"] += len(prompts)
        return out

    # ------------------------------------------------------------------ prompts

    def _add_bos(self, ids: list[int]) -> tuple[list[int], str]:
        """``ids`` with our BOS in front when ``add_bos`` asks for it, and the text that BOS is on the wire."""
        if self.add_bos and self.bos_id is not None and ids[:1] != [self.bos_id]:
            return [self.bos_id] + ids, self.tokenizer.decode([self.bos_id])
        return ids, ""

    def _encode_prompt(self, text: str) -> tuple[list[int], str]:
        """A whole prompt as the HF backend encodes it, and as text for servers that take text only."""
        ids, lead = self._add_bos(_encode_many(self.tokenizer, [text])[0] or [self._pid])
        return ids, lead + text

    def _prepare(self, context: str, continuation: str) -> tuple[list[int], list[int], str, int]:
        """Our (context ids, continuation ids), the prompt as text for servers that take text only, and the
        length of that text's context part."""
        ctx, cont = request_tokens(self.tokenizer, context, continuation)
        c, k = _split_spaces(context, continuation)
        empty = self.tokenizer.decode(ctx[:1]) if context == "" else ""  # empty context: conditioned on BOS/EOS
        if empty and self.server_bos and ctx[:1] == [self.bos_id]:
            empty = ""  # the server puts that BOS in front itself
        ctx, lead = self._add_bos(ctx)
        return ctx, cont, lead + empty + c + k, len(lead + empty + c)

    def _batch_prompt(self, batch: list[tuple[list[int], str]]) -> Any:
        one = [ids if self.token_ids else text for ids, text in batch]
        return one[0] if len(one) == 1 else one

    @functools.lru_cache(maxsize=65536)  # noqa: B019 - one backend per audit; token ids are few
    def _piece(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id])

    # ------------------------------------------------------------------ scoring

    async def _score_echo(self, client, jobs: list[tuple[tuple, tuple, str, int]]) -> list[float]:
        async def one(batch):
            body = completion_body(self.model_name, self._batch_prompt([(list(c) + list(k), t) for c, k, t, _ in batch]),
                                   max_tokens=1, echo=True, logprobs=1, extra=self.extra_body)
            resp = await client.post("/completions", body)
            choices = choices_in_order(resp, len(batch), self.where)
            self._check_usage(resp, [list(c) + list(k) for c, k, _, _ in batch])
            return [continuation_logprob(parse_echo(ch, self.where), c, k, self.bos_id, self._piece, self.where)
                    for ch, (c, k, _, _) in zip(choices, batch)]
        return await self._gather([jobs[i:i + self.batch_size] for i in range(0, len(jobs), self.batch_size)], one)

    def _check_usage(self, resp: dict, prompts: list[list[int]]) -> None:
        """The server's prompt-token count, where it reports one, must be ours (a dropped or added BOS shows here);
        one more per prompt without BOS where the server is known to put BOS in front (it is then scored after it)."""
        got = (resp.get("usage") or {}).get("prompt_tokens")
        expected = sum(len(ids) + (self.server_bos and ids[:1] != [self.bos_id]) for ids in prompts)
        if isinstance(got, int) and got != expected:
            raise ServerError(f"{self.where}: the server counted {got} prompt tokens where we sent "
                              f"{sum(map(len, prompts))} (it adds or drops a BOS, or tokenises differently)")

    def _learn_server_bos(self, resp: dict, ids: list[int]) -> None:
        """A server that counts exactly one token more than a prompt without BOS puts BOS in front itself (llama-cpp-python
        on a GGUF whose ``add_bos_token`` is true); with ``add_bos`` that would be a second BOS, refused."""
        got = (resp.get("usage") or {}).get("prompt_tokens")
        if self.bos_id is None or got != len(ids) + 1:
            return
        if ids[:1] == [self.bos_id]:
            raise ServerError(f"{self.where}: the server puts its own BOS in front of ours (it counted {got} prompt "
                              f"tokens where we sent {len(ids)}); drop add_bos")
        self.server_bos = True

    async def _gather(self, batches: list, one) -> list:
        sem = asyncio.Semaphore(self.concurrency)

        async def bounded(batch):
            async with sem:
                return await one(batch)

        results = await asyncio.gather(*(bounded(b) for b in batches))
        return [x for r in results for x in r]

    # ------------------------------------------------------------------ start-up probe

    def check(self) -> None:
        """Served models, version, prompt form and alignment, once; raises ServerError on a server we cannot audit."""
        if not self._checked:
            self.http.run(self._probe)
            self._checked = True

    def tune(self) -> None:
        """``check()``, then choose how many requests to keep in flight, once (before the first real request,
        so that an audit answered from the result cache does not pay for the measurement)."""
        self.check()
        if self.tuning["concurrency_from"] is None:
            self.http.run(self._choose_concurrency)
        self.http.concurrency = self.concurrency

    async def _probe(self, client) -> None:
        served = await client.get("/models")
        self._served = [m for m in (served.get("data") or []) if isinstance(m, dict)] if isinstance(served, dict) else []
        ids = [m.get("id") for m in self._served]
        if self.model_name is None:
            if not ids:
                raise ServerError(f"{self.where}: /models lists no model; pass the model name")
            self.model_name = ids[0]
        elif ids and self.model_name not in ids:
            raise ServerError(f"{self.where}: model '{self.model_name}' is not served (it serves: {', '.join(map(str, ids))})")
        self._version = await client.version()
        slots = llama_cpp_slots(await client.root_json("/props"))
        if slots is not None:  # llama.cpp keeps a prompt's KV cache for the next request only when asked
            self.tuning["llama_cpp_slots"] = slots
            self.extra_body.setdefault("cache_prompt", True)
        if self.score_by == "forced":
            reason = await self._probe_forced(client, PROBE_PROMPTS)
            if reason:
                raise ServerError(f"{self.where}: cannot score by forcing the continuation (score_by=forced): {reason}")
            self.forced, self.tuning["forced_refused"] = True, None
        else:  # echo, exact and independent of request order; auto forces only where the server cannot echo
            try:
                await self._probe_echo(client)
                self.forced, self.tuning["forced_refused"] = False, f"not tried, echo passed its probe (score_by={self.score_by})"
            except ServerError as echo_refused:
                reason = await self._probe_forced(client, PROBE_PROMPTS) if self.score_by == "auto" else "score_by=echo"
                if reason:
                    raise echo_refused
                self.forced, self.tuning["echo_refused"] = True, str(echo_refused)
        if self.batch_size > 1:  # generation (and echo scoring) send prompt lists where the server takes them
            await self._probe_batching(client)

    async def _probe_echo(self, client) -> None:
        """The echoed prompt log-probabilities sit where the echoed tokens say (``check_alignment``)."""
        aligned = 0
        for text in PROBE_PROMPTS:
            prompt, wire = self._encode_prompt(text)
            first = await self._probe_request(client, (prompt, wire), echo=False)
            choice = choices_in_order(first, 1, self.where)[0]
            if not (choice.get("logprobs") or {}).get("tokens") and choice.get("finish_reason") == "stop":
                continue  # the model ended the text at once: nothing to compare
            g_text, g_logprob = generated_entry(choice, self.where)
            self._check_greedy(g_text, g_logprob)
            whole, whole_wire = self._encode_prompt(text + g_text)
            if whole[: len(prompt)] != prompt or len(whole) != len(prompt) + 1:
                continue  # the generated text re-tokenises across the boundary: try the next prompt
            second = await self._probe_request(client, (whole, whole_wire), echo=True)
            self._learn_server_bos(second, whole)
            self._check_usage(second, [whole])
            echo = parse_echo(choices_in_order(second, 1, self.where)[0], self.where)
            check_alignment(g_logprob, echo, whole, self.bos_id, self._piece, self.where)
            aligned += 1
        if not aligned:
            raise ServerError(f"{self.where}: the alignment probe found no usable prompt (the greedy token never "
                              "re-tokenised cleanly); cannot check the server's prompt log-probabilities")

    def _check_greedy(self, token: str, logprob: float) -> None:
        """The greedy token of a distribution over V tokens has probability at least 1/V: a lower log-probability
        is not one (logits shifted by a constant, or a wrong distribution). One nat of slack for padded vocabularies."""
        floor = -math.log(max(2, len(self.tokenizer))) - 1.0
        if not math.isfinite(logprob) or logprob < floor:
            raise ServerError(f"{self.where}: the greedy token {shown(token)} came with log-probability {logprob:.4g}, "
                              f"below -log(vocabulary size) = {floor + 1.0:.4g}, which no greedy token can have; "
                              "the server's numbers are not log-probabilities; refusing to audit")

    async def _probe_request(self, client, wire: tuple[list[int], str], *, echo: bool, logprobs: int = 1,
                             retry: bool = True) -> dict:
        """One probe request; decides once whether prompts go as token ids (an error status to ids: text only)."""
        ids, text = wire
        if self.token_ids is None:
            body = completion_body(self.model_name, ids, max_tokens=1, echo=echo, logprobs=logprobs, extra=self.extra_body)
            try:  # llama-cpp-python answers a token-id prompt with 500 (a validation error), so any status
                resp = await client.post("/completions", body, retry=False)
                self.token_ids = True
                return resp
            except HTTPStatusError:
                self.token_ids = False  # a real server fault shows again on the text request, with retries
        prompt = ids if self.token_ids else text
        body = completion_body(self.model_name, prompt, max_tokens=1, echo=echo, logprobs=logprobs, extra=self.extra_body)
        return await client.post("/completions", body, retry=retry)

    async def _probe_batching(self, client) -> None:
        """Several prompts per request where the server answers a two-prompt list with two choices."""
        wire = [self._encode_prompt(t) for t in PROBE_PROMPTS[:2]]
        body = completion_body(self.model_name, self._batch_prompt(wire), max_tokens=1, echo=not self.forced,
                               logprobs=1, extra=self.extra_body)
        try:
            choices_in_order(await client.post("/completions", body, retry=False), 2, self.where)
        except ServerError:
            self.batch_size = 1

    async def _choose_concurrency(self, client) -> None:
        """Requests in flight: llama.cpp's slots where it says, else measured on scoring-shaped requests."""
        slots = self.tuning["llama_cpp_slots"]
        if slots is not None:
            self.concurrency, self.tuning["concurrency_from"] = max(FLOOR, slots), "llama.cpp /props total_slots"
        else:
            wire = min((self._encode_prompt(t) for t in PROBE_PROMPTS), key=lambda w: len(w[0]))  # the cheapest

            async def send(_: int) -> None:
                batch = [wire] * (1 if self.forced else self.batch_size)  # forced: one grammar per request
                body = completion_body(self.model_name, self._batch_prompt(batch), max_tokens=1, echo=not self.forced,
                                       logprobs=1, extra=self.extra_body)
                choices_in_order(await client.post("/completions", body), len(batch), self.where)

            table = await rates_in_flight(send)
            self.tuning["rates_in_flight"] = [(c, round(rate, 2)) for c, rate in table]
            self.concurrency, self.tuning["concurrency_from"] = choose_concurrency(table), "measured"

    def _owner(self) -> str | None:
        return next((m.get("owned_by") for m in self._served if m.get("id") == self.model_name), None)


def backend_from_spec(spec: str, **options) -> OpenAICompletionsBackend:
    """Registry entry for the lead's backend seam: ``backend_from_spec("openai-completions:URL", tokenizer=..., ...)``."""
    return OpenAICompletionsBackend.from_spec(spec, **options)


# --- the registry's entry points (audit.backends): --backend-option KEY=VALUE carries the settings ----------

def check_openai_completions(target: str, options: BackendOptions) -> None:
    _settings(options)
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"model spec '{SPEC_PREFIX}{strip_credentials(target)}': expected a server URL such as http://host:8000/v1")


def load_openai_completions(target: str, options: BackendOptions) -> OpenAICompletionsBackend:
    settings = _settings(options)
    spec = private_spec(SPEC_PREFIX + target)  # the credentials stripped from the public spec travel in memory only
    return OpenAICompletionsBackend.from_spec(spec, model_name=settings.pop("model", None), **settings)
