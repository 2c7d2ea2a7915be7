"""HTTP for the completions backend: async (httpx), bounded, with retries only where they can help.

A connection error (refused, reset, dropped mid-answer) and a 5xx answer are retried with
exponential backoff; a timeout and every other HTTP error is reported at once, in one line that
names the server and carries the server's own message (secrets removed). The API key travels in
the ``Authorization`` header only.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import time
from typing import Any

from audit.errors import ConfigError
from audit.results.redaction import redact, register_secret
from .openai_wire import ServerError

KEY_ENVS = ("BIAS_AUDIT_API_KEY", "OPENAI_API_KEY")


class HTTPStatusError(ServerError):
    """The server answered with an HTTP error status (kept apart to detect unsupported request shapes)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def api_key(api_key_env: str | None) -> str | None:
    """The key from ``api_key_env`` (which must be set), else from the first of ``KEY_ENVS`` that is set."""
    if api_key_env:
        if api_key_env not in os.environ:
            raise ConfigError(f"api key: environment variable {api_key_env} is not set")
        key = os.environ[api_key_env]
    else:
        key = next((os.environ[name] for name in KEY_ENVS if os.environ.get(name)), None)
    register_secret(key)  # whatever its variable is called, the key is redacted from every output
    return key


class Transport:
    """``run(work)`` calls ``work(connection)`` on a fresh event loop; the connection sends requests."""

    def __init__(self, base_url: str, *, where: str, api_key: str | None, concurrency: int, timeout: float,
                 max_retries: int, backoff: float, auth: tuple[str, str] | None = None, params: list | None = None,
                 deadline: float | None = None):
        self.base_url = base_url
        self.where = where
        self._key = api_key
        self._auth = auth  # user:password of the URL: HTTP basic auth, unless an API key (Bearer) is set
        self._params = list(params or [])  # the URL's query (e.g. api_key=...), sent with every request
        self.concurrency = concurrency
        self.timeout = float(timeout)  # a whole request, connection to last byte (not per read)
        self.max_retries = int(max_retries)
        self.backoff = backoff
        self.deadline = deadline  # seconds for every request of this backend together (the run's deadline)
        self._deadline_at = None if deadline is None else time.monotonic() + float(deadline)
        self.stats = {"requests": 0, "generated": 0, "http_requests": 0, "retries": 0}

    def run(self, work):
        async def main():
            import httpx

            headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
            limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
            async with httpx.AsyncClient(headers=headers, timeout=self.timeout, limits=limits, auth=None if self._key else self._auth,
                                         params=self._params) as client:
                return await work(_Connection(self, client))

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(main())
        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # called from async code: a loop of our own
            return pool.submit(asyncio.run, main()).result()

    def request_budget(self, where: str) -> float:
        """Seconds the next request may take: the request timeout, cut by what is left of the run's deadline."""
        if self._deadline_at is None:
            return self.timeout
        left = self._deadline_at - time.monotonic()
        if left <= 0:
            raise ServerError(f"{where}: the run's deadline of {self.deadline:g} s passed (--backend-option deadline=SECONDS)")
        return min(self.timeout, left)

    def message(self, resp) -> str:
        """The server's error message: first line, short, with secrets removed."""
        try:
            data = resp.json()
            err = data.get("error", data.get("detail", data)) if isinstance(data, dict) else data
            text = err.get("message", err) if isinstance(err, dict) else err
            text = text if isinstance(text, str) else json.dumps(text)
        except ValueError:
            text = resp.text
        line = " ".join((text or resp.reason_phrase or "").split())[:200]
        secrets = [self._key] if self._key else []
        return redact(redact(line, secrets))


class _Connection:
    def __init__(self, transport: Transport, client):
        self.t = transport
        self.client = client

    async def get(self, path: str) -> Any:
        return await self._request("GET", path, None, retry=True)

    async def post(self, path: str, body: dict, *, retry: bool = True) -> Any:
        return await self._request("POST", path, body, retry=retry)

    async def version(self) -> str | None:
        """The server's ``/version`` (vLLM, SGLang) where it has one; provenance only, never retried."""
        version = (await self.root_json("/version") or {}).get("version")
        return str(version) if version is not None else None

    async def root_json(self, path: str) -> dict | None:
        """A JSON object from ``path`` under the server's root (``/version``, llama.cpp's ``/props``), or None
        where the server has no such page; asked once, never retried (these pages are optional)."""
        root = self.t.base_url.rsplit("/", 1)[0]
        try:
            resp = await self.client.get(root + path, timeout=min(self.t.timeout, 10.0))
            data = resp.json() if resp.status_code == 200 else None
        except Exception:  # noqa: BLE001 - many servers have neither page
            return None
        return data if isinstance(data, dict) else None

    async def _request(self, method: str, path: str, body: dict | None, *, retry: bool) -> Any:
        import httpx

        t, where = self.t, f"{self.t.where}{path}"
        for attempt in range(t.max_retries + 1):
            last = attempt == t.max_retries or not retry
            t.stats["http_requests"] += 1
            budget = t.request_budget(where)
            try:
                resp = await asyncio.wait_for(self.client.request(method, t.base_url + path, json=body), budget)
            except asyncio.TimeoutError:
                if budget < t.timeout:
                    raise ServerError(f"{where}: the run's deadline of {t.deadline:g} s passed "
                                      "(--backend-option deadline=SECONDS)") from None
                raise ServerError(f"{where}: no answer within {t.timeout:g} s for the whole request "
                                  "(raise --backend-option timeout=SECONDS?)") from None
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError,
                    httpx.WriteError) as exc:
                if last:
                    tries = f" after {attempt + 1} tries" if attempt else ""
                    raise ServerError(f"{where}: cannot reach the server ({type(exc).__name__}{tries})") from None
            except httpx.TimeoutException:
                raise ServerError(f"{where}: no answer within {t.timeout:g} s (raise the timeout?)") from None
            else:
                if resp.status_code < 500 or last:
                    return self._answer(resp, where)
            t.stats["retries"] += 1
            await asyncio.sleep(t.backoff * 2**attempt)
        raise AssertionError("unreachable")

    def _answer(self, resp, where: str) -> Any:
        if resp.status_code != 200:
            raise HTTPStatusError(f"{where}: HTTP {resp.status_code}: {self.t.message(resp)}", resp.status_code)
        try:
            return resp.json()
        except ValueError:
            raise ServerError(f"{where}: the answer is not JSON") from None
