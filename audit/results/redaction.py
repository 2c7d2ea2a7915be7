"""Secrets never leave the process: what the user gave as a secret is replaced by [REDACTED] in
everything written (results.json, the report, JUnit, the step summary, the console), by value.

Secrets are: the values of environment variables whose name has a secret word as one of its parts
(``HF_TOKEN``, ``OPENAI_API_KEY``; not ``MODEL_TOKENIZER``), the value of the variable named by
``api_key_env`` (registered when it is read), and the user:password and secret query parameters of
a server URL in a model spec (stripped from the spec where it is parsed, ``public_spec``, and
registered). Token-shaped strings (``hf_...``, ``sk-...``) and URL credentials are redacted by
shape as well, for text that never went through ``public_spec``. See docs/security.md.
"""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

_SECRET_PARTS = {"TOKEN", "TOKENS", "SECRET", "SECRETS", "PASSWORD", "PASSWD", "PASS", "APIKEY", "CREDENTIAL",
                 "CREDENTIALS", "AUTH", "BEARER", "PAT"}
_SECRET_PAIRS = {("API", "KEY"), ("ACCESS", "KEY"), ("PRIVATE", "KEY"), ("SECRET", "KEY"), ("AUTH", "KEY")}
_SECRET_PARAMS = {"api_key", "apikey", "api-key", "key", "token", "access_token", "auth", "password", "secret",
                  "sig", "signature", "code"}
_SECRET_SHAPES = re.compile(r"\bhf_[A-Za-z0-9]{20,}\b|\b(?:sk|ghp|gho|ghs|github_pat)[-_][A-Za-z0-9_-]{20,}\b")
_URL_USERINFO = re.compile(r"(?<=://)[^/@\s\"'<>]+@")
_URL_SECRET_PARAM = re.compile(r"(?i)([?&](?:%s)=)[^&#\s\"'<>]+" % "|".join(re.escape(p) for p in sorted(_SECRET_PARAMS)))
MIN_SECRET_LENGTH = 4  # shorter values are still stripped from the spec, but not replaced in free text

_registered: set[str] = set()
_private_specs: dict[str, str] = {}


def is_secret_name(name: str) -> bool:
    """Does an environment variable's name say it holds a secret? By whole name parts: HF_TOKEN yes, MODEL_TOKENIZER no."""
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", name.upper()) if p]
    return any(p in _SECRET_PARTS for p in parts) or any(pair in _SECRET_PAIRS for pair in zip(parts, parts[1:]))


def register_secret(value: str | None) -> None:
    """Redact ``value`` from every output of this process from now on (a key read from ``api_key_env``...)."""
    if value and len(value) >= MIN_SECRET_LENGTH:
        _registered.add(value)
        quoted = urlencode({"": value})[1:]  # as it would appear inside a URL
        if quoted != value:
            _registered.add(quoted)


def secret_values() -> list[str]:
    """Every secret value known to this process, longest first."""
    found = {v for k, v in os.environ.items() if is_secret_name(k) and len(v) >= 6} | _registered
    return sorted(found, key=len, reverse=True)


def redact(text: str, secrets: list[str] | None = None) -> str:
    """``text`` with known secrets, token-shaped strings and URL credentials replaced by [REDACTED]."""
    for secret in secret_values() if secrets is None else secrets:
        text = text.replace(secret, "[REDACTED]")
    text = _URL_USERINFO.sub("[REDACTED]@", text)
    text = _URL_SECRET_PARAM.sub(r"\1[REDACTED]", text)
    return _SECRET_SHAPES.sub("[REDACTED]", text)


def public_spec(spec: str) -> str:
    """A model spec without the credentials of its URL (user:password, secret query parameters).

    The credentials are registered as secrets, and the full spec is kept in this process only, for
    the backend that connects (``private_spec``). Every name, id and file uses the public spec.
    """
    scheme, sep, target = spec.partition(":")
    if "://" not in target:
        return spec
    parts = urlsplit(target)
    query = parse_qsl(parts.query, keep_blank_values=True)
    secret_query = [(k, v) for k, v in query if k.lower() in _SECRET_PARAMS]
    if not (parts.username or parts.password or secret_query):
        return spec
    for value in (parts.username, parts.password, *(v for _, v in secret_query)):
        if value:
            register_secret(value)
            register_secret(unquote(value))
    host = parts.netloc.rsplit("@", 1)[-1]
    kept = urlencode([(k, v) for k, v in query if k.lower() not in _SECRET_PARAMS])
    clean = f"{scheme}{sep}{urlunsplit((parts.scheme, host, parts.path, kept, parts.fragment))}"
    _private_specs[clean] = spec
    return clean


def private_spec(spec: str) -> str:
    """The spec as the user gave it (with its credentials), for the backend that connects; in memory only."""
    return _private_specs.get(spec, spec)
