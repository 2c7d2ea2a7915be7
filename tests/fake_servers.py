"""Tiny in-process HTTP servers for the completions backend's unit tests (loopback, a free port).

``serve(handler)`` runs ``handler(method, path, body, headers) -> (status, payload)`` per request;
payload ``None`` drops the connection without an answer. ``VLLMShaped`` answers as vLLM does
(token-id prompts, ``prompt_logprobs`` keyed by token id) from a real transformers model, so a
backend's numbers can be checked against the HF scorer's.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch


def completions_backend(url: str, tokenizer, **options):
    """The openai-completions backend on a fake server at ``url`` (30 s timeout unless given)."""
    from audit.backends.openai_completions import OpenAICompletionsBackend

    return OpenAICompletionsBackend.from_spec(f"openai-completions:{url}", tokenizer=tokenizer, **{"timeout": 30, **options})


@contextmanager
def serve(handler):
    class Handler(BaseHTTPRequestHandler):
        def _do(self, method):
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            status, payload = handler(method, self.path, body, dict(self.headers))
            if payload is None:  # drop the connection mid-request
                self.close_connection = True
                self.connection.shutdown(2)
                return
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self._do("GET")

        def do_POST(self):
            self._do("POST")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


class VLLMShaped:
    """A vLLM-like ``/v1/completions`` over a transformers model: token-id prompts only, batched, greedy.

    ``echo`` with ``logprobs`` returns ``prompt_logprobs`` (one dict per prompt token, keyed by token
    id, None first) and OpenAI-shape ``logprobs`` for the generated token. ``shift=True`` misplaces
    the prompt log-probabilities by one position (the bug the alignment probe must catch);
    ``ignore_echo=True`` returns the generated token only (llama-server's behaviour). ``slots`` and
    ``seconds`` make it a server that runs ``slots`` requests at a time, each taking ``seconds``;
    ``props`` serves llama.cpp's ``/props`` page; ``fail_first`` answers the first requests of a kind
    with 503. ``most_in_flight`` is the most completion requests it ever held at once.
    """

    def __init__(self, model, tokenizer, *, shift: bool = False, ignore_echo: bool = False, slots: int | None = None,
                 seconds: float = 0.0, props: dict | None = None, fail_first: dict[str, int] | None = None):
        self.model, self.tok, self.shift, self.ignore_echo = model, tokenizer, shift, ignore_echo
        self.bodies: list[dict] = []
        # a server of ``slots`` sequences at a time, each completion request taking at least ``seconds``
        self.gate = threading.Semaphore(slots) if slots else None
        self.seconds = seconds
        self.props = props  # served as /props (llama.cpp's llama-server page) when given
        self.fail_first = dict(fail_first or {})  # {"echo"|"generate": n}: answer the first n such requests with 503
        self.in_flight = self.most_in_flight = 0
        self._count = threading.Lock()
        self._model_lock = threading.Lock()  # the model itself runs one request at a time

    @torch.inference_mode()
    def _logprobs(self, ids: list[int]) -> torch.Tensor:
        logits = self.model(input_ids=torch.tensor([ids])).logits[0].float()
        return torch.log_softmax(logits, dim=-1)  # row i predicts token i + 1

    def _choice(self, index: int, ids: list[int], body: dict) -> dict:
        lp = self._logprobs(ids)
        g = int(lp[-1].argmax())
        generated = {"tokens": [" " + self.tok.decode([g])], "token_logprobs": [float(lp[-1, g])], "top_logprobs": [None]}
        choice = {"index": index, "text": " " + self.tok.decode([g]), "finish_reason": "length", "logprobs": generated}
        if body.get("echo") and not self.ignore_echo:
            prompt = [None]
            for j in range(1, len(ids)):
                row = lp[min(j, len(ids) - 1)] if self.shift else lp[j - 1]  # shifted: llama-cpp-python without BOS
                top = int(row.argmax())
                prompt.append({str(ids[j]): {"logprob": float(row[ids[j]]), "rank": 1},
                               str(top): {"logprob": float(row[top]), "rank": 1}})
            choice["prompt_logprobs"] = prompt
        return choice

    def __call__(self, method, path, body, headers):
        if path.endswith("/models"):
            return 200, {"object": "list", "data": [{"id": "tiny", "owned_by": "vllm"}]}
        if path.endswith("/version"):
            return 200, {"version": "0.0-test"}
        if path.endswith("/props") and self.props is not None:
            return 200, self.props
        if method == "GET":  # vLLM has no /props (llama.cpp's page)
            return 404, {"detail": "Not Found"}
        with self._count:
            self.bodies.append(body)
            kind = "echo" if body.get("echo") else "generate"
            if self.fail_first.get(kind, 0) > 0:
                self.fail_first[kind] -= 1
                return 503, {"error": {"message": "busy, try again"}}
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.gate is None:
                return self._complete(body)
            with self.gate:
                time.sleep(self.seconds)
                return self._complete(body)
        finally:
            with self._count:
                self.in_flight -= 1

    def _complete(self, body):
        prompt = body["prompt"]
        if not isinstance(prompt, list) or not prompt or not all(isinstance(x, (int, list)) for x in prompt):
            return 400, {"error": {"message": "this test server takes token ids only"}}
        prompts = prompt if isinstance(prompt[0], list) else [prompt]
        with self._model_lock:
            choices = [self._choice(i, p, body) for i, p in enumerate(prompts)]
        usage = {"prompt_tokens": sum(len(p) for p in prompts), "completion_tokens": len(prompts)}
        return 200, {"object": "text_completion", "choices": choices, "usage": usage}


class LlamaCppPythonShaped:
    """llama-cpp-python's ``/v1/completions`` over a transformers model, as its 0.3 server answers.

    Text prompts only (a list of one at most; token ids are a validation error), one request at a time.
    ``add_bos=True`` puts BOS in front of every prompt (a GGUF whose ``add_bos_token`` is true). The echo
    drops a leading BOS and pairs echoed token j with the model's j-th distribution, which is right only
    when a BOS was dropped (otherwise every entry is one position off, the bug the probe must catch); the
    first entry is null; ``usage.prompt_tokens`` counts the BOS.
    """

    def __init__(self, model, tokenizer, *, add_bos: bool = False):
        self.model, self.tok, self.add_bos = model, tokenizer, add_bos
        self.bodies: list[dict] = []

    def __call__(self, method, path, body, headers):
        if path.endswith("/models"):
            return 200, {"object": "list", "data": [{"id": "tiny", "owned_by": "me"}]}
        if method == "GET":
            return 404, {"detail": "Not Found"}
        self.bodies.append(body)
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) <= 1 and all(isinstance(p, str) for p in prompt):
            prompt = prompt[0] if prompt else ""
        if isinstance(prompt, list):
            return (500 if all(isinstance(p, str) for p in prompt) else 422), {"detail": "prompt: str or a list of one str"}
        if not isinstance(prompt, str):
            return 422, {"detail": "prompt: input should be a valid string"}
        bos = self.tok.bos_token_id
        ids = ([bos] if self.add_bos else []) + self.tok(prompt, add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            rows = torch.log_softmax(self.model(input_ids=torch.tensor([ids])).logits[0].float(), dim=-1)
        g = int(rows[-1].argmax())
        if body.get("echo"):
            tokens = (ids[1:] if ids[0] == bos else ids) + [g]
            pairs = [(t, float(rows[j, t])) for j, t in enumerate(tokens[: len(rows)]) if t != bos]
            text = prompt + self.tok.decode([g])
        else:
            pairs, text = [(g, float(rows[-1, g]))], self.tok.decode([g])
        logprobs = {"tokens": [self.tok.decode([t]) for t, _ in pairs], "token_logprobs": [lp for _, lp in pairs],
                    "top_logprobs": [{self.tok.decode([t]): lp} for t, lp in pairs], "text_offset": [0] * len(pairs)}
        if body.get("echo"):
            logprobs["token_logprobs"][0] = logprobs["top_logprobs"][0] = None
        choice = {"index": 0, "text": text, "finish_reason": "length",
                  "logprobs": logprobs if body.get("logprobs") is not None else None}
        usage = {"prompt_tokens": len(ids), "completion_tokens": 1, "total_tokens": len(ids) + 1}
        return 200, {"object": "text_completion", "model": body.get("model"), "choices": [choice], "usage": usage}


def cloze_requests(n_items: int, *, shots: bool = True) -> list:
    """Two requests (one per candidate) for each of ``n_items`` generated WinoBias items spread over the set,
    in the zero_shot format (with two of the items as shots unless ``shots`` is False)."""
    from audit.backends.base import Request
    from audit.datasets.winobias.generated import generate_items
    from audit.prompts.render import continuation, render_prompt

    items = generate_items(0)[:: max(1, 1280 // n_items)][:n_items]
    out = []
    for item in items:
        prompt = render_prompt("zero_shot", item, items[:2] if shots else [])
        out += [Request(prompt.prefix, prompt.query, continuation(c)) for c in item.candidates]
    return out
