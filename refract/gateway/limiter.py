"""A requests-per-minute limit on model calls, shared by every worker through Redis.

Gemini's quotas are per Google Cloud project and model, so the limit must hold across
all worker processes and hosts; Celery's own ``rate_limit`` counts per worker only. The
limiter keeps a sliding one-minute window of call times in a Redis sorted set per model
and admits a call only while fewer than ``rpm`` calls are in it. The check and the
insert run as one Lua script, so two workers can never take the last slot together.

Redis going away for a moment (a restart, a failover, a network blip) is no reason to
fail a feature: the limiter retries it with backoff while the caller's wait allows, and
only then reports a retryable error, which the gateway's retry loop handles like a 429.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from typing import Protocol

import redis
import structlog

from refract.core import interrupt
from refract.core.errors import RetryableModelError
from refract.observability import metrics

log = structlog.get_logger(__name__)

WINDOW_MS = 60_000
# Backoff while Redis does not answer: doubling from the base, capped.
UNREACHABLE_RETRY_BASE_S = 0.2
UNREACHABLE_RETRY_MAX_S = 2.0
_UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

# KEYS[1]: the model's window. ARGV: now (ms), window (ms), limit, a unique member.
# Returns 0 when the call was admitted, else the milliseconds until a slot frees up.
_ACQUIRE = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now, ARGV[4])
  redis.call('PEXPIRE', key, window)
  return 0
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
local wait = tonumber(oldest[2]) + window - now
if wait < 1 then wait = 1 end
return wait
"""


class RateLimiter(Protocol):
    """Something that admits model calls at a bounded rate."""

    def acquire(self, model: str, timeout_s: float) -> None:
        """Block until a call to ``model`` may go out; ``RetryableModelError`` if not soon."""


class RedisRateLimiter:
    """A sliding-window RPM limit per model, shared through Redis (``rpm`` 0: no limit)."""

    def __init__(
        self,
        redis: redis.Redis[str],
        rpm: int,
        *,
        key_prefix: str = "refract:ratelimit",
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``clock`` is wall time in seconds; every worker's clock must roughly agree."""
        if rpm < 0:
            raise ValueError("rpm must be 0 (unlimited) or more")
        self.redis = redis
        self.rpm = rpm
        self.key_prefix = key_prefix
        self._sleep = sleep
        self._clock = clock
        self._script = redis.register_script(_ACQUIRE)

    def key(self, model: str) -> str:
        """The Redis key holding ``model``'s window."""
        return f"{self.key_prefix}:{model}"

    def try_acquire(self, model: str) -> float:
        """Take a slot if one is free: 0.0, else the seconds until one frees up."""
        now_ms = int(self._clock() * 1000)
        member = f"{now_ms}:{uuid.uuid4().hex}"
        wait_ms = self._script(keys=[self.key(model)], args=[now_ms, WINDOW_MS, self.rpm, member])
        return int(wait_ms) / 1000.0

    def acquire(self, model: str, timeout_s: float) -> None:
        """Block until a call to ``model`` may go out.

        Raises ``RetryableModelError('rate_limited')`` with the expected wait as
        ``retry_after`` when no slot will be free within ``timeout_s``.
        """
        if self.rpm == 0:
            return
        deadline = self._clock() + timeout_s
        failures = 0
        while True:
            try:
                wait_s = self.try_acquire(model)
            except _UNREACHABLE as exc:
                failures += 1
                self._wait_for_redis(model, failures, deadline - self._clock(), exc)
                continue
            if wait_s <= 0:
                metrics.limiter_wait(model, timeout_s - (deadline - self._clock()))
                return
            remaining = deadline - self._clock()
            if wait_s > remaining:
                raise RetryableModelError(
                    "rate_limited",
                    f"the shared limit of {self.rpm} requests per minute to {model} is "
                    f"reached; the next slot frees up in {wait_s:.1f}s",
                    retry_after=wait_s,
                )
            # A little jitter so the workers woken by the same freed slot do not collide;
            # a canceled feature stops waiting for a slot it no longer needs.
            interrupt.wait(
                wait_s + random.uniform(0, min(0.05, remaining - wait_s)),
                self._sleep,
                "waiting for the rate limit",
            )

    def _wait_for_redis(
        self, model: str, failures: int, remaining_s: float, exc: Exception
    ) -> None:
        """Back off before asking Redis again, or give up with a retryable error once the
        caller's wait is over (the gateway then retries the call, as after a 429)."""
        delay = min(UNREACHABLE_RETRY_MAX_S, UNREACHABLE_RETRY_BASE_S * 2 ** (failures - 1))
        if delay > remaining_s:
            raise RetryableModelError(
                "rate_limiter_unavailable",
                f"the shared rate limit for {model} could not be checked (Redis unreachable)",
            ) from exc
        log.warning(
            "rate_limiter_unreachable",
            model=model,
            failures=failures,
            delay_s=round(delay, 2),
            error=type(exc).__name__,
        )
        self._sleep(delay)
