"""Normalising a scored option's log-likelihood (length normalisation of multiple-choice scoring)."""

from __future__ import annotations

from typing import Literal

Normalization = Literal["none", "token", "char"]


def normalize_loglikelihood(loglikelihood: float, continuation: str, n_tokens: int, mode: Normalization = "none") -> float:
    """A candidate's score: the summed log-likelihood (``none``), per token (``token``), or per character of
    the continuation as scored, leading space included (``char``, lm-evaluation-harness's acc_norm)."""
    if mode == "none":
        return loglikelihood
    if mode == "token":
        if n_tokens <= 0:
            raise ValueError("token normalisation needs at least one continuation token")
        return loglikelihood / n_tokens
    if mode == "char":
        if not continuation:
            raise ValueError("char normalisation needs a non-empty continuation")
        return loglikelihood / len(continuation)
    raise ValueError(f"normalization must be 'none', 'token' or 'char', got {mode!r}")
