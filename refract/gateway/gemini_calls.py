"""Counting Gemini calls for the metrics: each call's outcome, and the tokens it cost.

:func:`counted` wraps the SDK call itself (inside the retry loop, after the limiter), so
every attempt is one call: a 429 that is retried and then answered counts once as
``429`` and once as ``ok``. The outcome is read from the SDK's own exception, before the
gateway turns it into a feature error.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
from google.genai import errors, types

from refract.gateway.gemini_replies import usage_of
from refract.observability import metrics
from refract.observability.usage import UsageCounter

try:  # google-genai 3.x talks through httpx2, a fork with its own exception classes.
    import httpx2

    _TIMEOUTS: tuple[type[Exception], ...] = (httpx.TimeoutException, httpx2.TimeoutException)
except ImportError:  # pragma: no cover - older SDKs use httpx alone
    _TIMEOUTS = (httpx.TimeoutException,)


def outcome_of(exc: Exception) -> str:
    """How a failed call ended: ``429``, ``5xx``, ``timeout`` or ``error``."""
    if isinstance(exc, errors.APIError):
        if exc.code == 429:
            return "429"
        if exc.code == 408:
            return "timeout"
        if isinstance(exc.code, int) and exc.code >= 500:
            return "5xx"
        return "error"
    return "timeout" if isinstance(exc, _TIMEOUTS) else "error"


def counted(
    model: str,
    call: Callable[[], types.GenerateContentResponse],
    usage: UsageCounter | None = None,
) -> types.GenerateContentResponse:
    """Make the call to ``model``, counting its outcome and the tokens it reports (and,
    given ``usage``, the call in the event's Redis counts the dashboard shows)."""
    try:
        response = call()
    except Exception as exc:
        _count(model, outcome_of(exc), usage)
        raise
    _count(model, "ok", usage)
    spent = usage_of(response)
    metrics.tokens(model, "input", spent.input_tokens)
    metrics.tokens(model, "output", spent.output_tokens)
    return response


def _count(model: str, outcome: str, usage: UsageCounter | None) -> None:
    metrics.model_call(model, outcome)
    if usage is not None:
        usage.record(model, outcome)
