"""Model calls counted in Redis, per minute and for the whole event.

Prometheus counters (``/metrics``) live per host and start over with each process; the
dashboard wants "calls and 429s in the last 15 minutes" across every worker of the event,
so each call is also counted in a Redis hash per minute (kept two hours) and in one
running total. Counting is best effort: a counter that cannot be written never fails a
feature.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

import redis
import structlog

log = structlog.get_logger(__name__)

MINUTE_KEY = "refract:usage:minute:{minute}"
TOTAL_KEY = "refract:usage:total"
MINUTE_TTL_S = 2 * 3600
# How a call ended, as /metrics says it (refract.gateway.gemini_calls.outcome_of):
# answered, refused for quota, a server error, timed out, any other error.
OUTCOMES = ("ok", "429", "5xx", "timeout", "error")


def _minute(now: float) -> int:
    return int(now // 60)


def record_model_call(
    client: redis.Redis[str], model: str, outcome: str, now: float | None = None
) -> None:
    """Count one call to ``model`` that ended with ``outcome`` (one of :data:`OUTCOMES`)."""
    field_name = f"{model}|{outcome}"
    key = MINUTE_KEY.format(minute=_minute(now if now is not None else time.time()))
    try:
        pipe = client.pipeline(transaction=False)
        pipe.hincrby(key, field_name, 1)
        pipe.expire(key, MINUTE_TTL_S)
        pipe.hincrby(TOTAL_KEY, field_name, 1)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("usage_not_counted", model=model, outcome=outcome, error=type(exc).__name__)


@dataclass
class ModelUsage:
    """Calls per model and outcome: over the window asked for, and since the event began."""

    window_minutes: int
    recent: dict[str, dict[str, int]] = field(default_factory=dict)
    total: dict[str, dict[str, int]] = field(default_factory=dict)


def _fold(raw: dict[str, str], into: defaultdict[str, dict[str, int]]) -> None:
    for name, count in raw.items():
        model, _, outcome = name.rpartition("|")
        slot = into[model]
        slot[outcome] = slot.get(outcome, 0) + int(count)


def read_usage(
    client: redis.Redis[str], window_minutes: int = 15, now: float | None = None
) -> ModelUsage:
    """The counts of the last ``window_minutes`` minutes (this one included) and in total."""
    current = _minute(now if now is not None else time.time())
    pipe = client.pipeline(transaction=False)
    for minute in range(current - window_minutes + 1, current + 1):
        pipe.hgetall(MINUTE_KEY.format(minute=minute))
    pipe.hgetall(TOTAL_KEY)
    *minutes, total = pipe.execute()
    recent: defaultdict[str, dict[str, int]] = defaultdict(dict)
    for raw in minutes:
        _fold(raw, recent)
    overall: defaultdict[str, dict[str, int]] = defaultdict(dict)
    _fold(total, overall)
    return ModelUsage(window_minutes, dict(recent), dict(overall))


class UsageCounter:
    """What a model backend counts its calls with (one per worker process)."""

    def __init__(self, client: redis.Redis[str]) -> None:
        """Count into ``client``'s Redis (the progress Redis every process shares)."""
        self.client = client

    def record(self, model: str, outcome: str) -> None:
        """Count one call to ``model`` that ended with ``outcome``."""
        record_model_call(self.client, model, outcome)
