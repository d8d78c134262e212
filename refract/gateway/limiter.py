"""The Gemini quota, shared by every worker through Redis: requests and tokens per minute,
per model, let through exactly and in order.

Gemini's quotas are per Google Cloud project and model (requests per minute, input tokens
per minute), so the limit must hold across all worker processes and hosts; Celery's own
``rate_limit`` counts per worker only. Each model has a sliding window of *reservations*
in a Redis sorted set: a call asks for the earliest moment it may go out, and one Lua
script — reading Redis's clock, not the host's, so that hosts whose clocks disagree still
share one window — finds that moment and books it:

- no earlier than the last booking (first come, first served: a waiting call is never
  overtaken by a later one);
- no earlier than ``window`` after the booking that must leave the window for the
  requests-per-minute limit to hold;
- no earlier than the moment enough tokens have left the window for the call's estimated
  input tokens (``settle`` corrects the estimate once the answer says what it cost);
- no earlier than the end of a hold-off set when Gemini answered 429 anyway (another
  client on the same project): everyone waits it out, in their order.

The caller then sleeps until its booking, so the quota's full rate is used and nothing
is sent over it. A call whose booking is further away than it may wait books nothing and
gets a retryable error. Redis going away for a moment (a restart, a failover) is no
reason to fail a feature: the limiter retries it with backoff while the caller's wait
allows, then reports a retryable error the gateway's retry loop handles like a 429.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import redis
import structlog

from refract.core import interrupt
from refract.core.errors import RetryableModelError
from refract.observability import metrics

log = structlog.get_logger(__name__)

WINDOW_S = 60.0
# Added to the window: Gemini counts a request when it arrives, a little after we send it.
MARGIN_S = 0.25
# Backoff while Redis does not answer: doubling from the base, capped.
UNREACHABLE_RETRY_BASE_S = 0.2
UNREACHABLE_RETRY_MAX_S = 2.0
_UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

# KEYS: the model's bookings (score: ms; member: "<id>|<tokens>"), its hold-off (ms).
# ARGV: window+margin (ms), rpm, tpm, tokens, id, the longest acceptable wait (ms).
# Returns {booked (1/0), wait in ms}; with 0 nothing was booked.
_RESERVE = """
local bookings, hold = KEYS[1], KEYS[2]
local span = tonumber(ARGV[1])
local rpm, tpm = tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens, id, max_wait = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', bookings, '-inf', now - span)
local at = now
local held = tonumber(redis.call('GET', hold) or '0')
if held > at then at = held end
local entries = redis.call('ZRANGE', bookings, 0, -1, 'WITHSCORES')
local n = #entries / 2
if n > 0 and tonumber(entries[n * 2]) > at then at = tonumber(entries[n * 2]) end
if rpm > 0 and n >= rpm then
  local leaves = tonumber(entries[(n - rpm + 1) * 2]) + span
  if leaves > at then at = leaves end
end
if tpm > 0 then
  -- From the newest booking back: the first that does not fit beside this call's tokens
  -- (and every older one) must have left the window.
  local mine = math.min(tokens, tpm)
  local kept = 0
  for i = n, 1, -1 do
    local booked_at = tonumber(entries[i * 2])
    if booked_at <= at - span then break end
    local spent = tonumber(string.match(entries[i * 2 - 1], '|(%d+)$') or '0')
    if kept + spent + mine > tpm then
      if booked_at + span > at then at = booked_at + span end
      break
    end
    kept = kept + spent
  end
end
local wait = at - now
if wait > max_wait then return {0, wait} end
redis.call('ZADD', bookings, at, id .. '|' .. tokens)
redis.call('PEXPIRE', bookings, wait + span + 1000)
return {1, wait}
"""

# KEYS: bookings. ARGV: id, estimated tokens, actual tokens. Rewrites the booking's tokens.
_SETTLE = """
local old = ARGV[1] .. '|' .. ARGV[2]
local score = redis.call('ZSCORE', KEYS[1], old)
if not score then return 0 end
redis.call('ZREM', KEYS[1], old)
redis.call('ZADD', KEYS[1], score, ARGV[1] .. '|' .. ARGV[3])
return 1
"""

# KEYS: the hold-off. ARGV: seconds (ms). Holds every booking back until Redis's now + that.
_HOLD = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
local held = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ms > held then
  redis.call('SET', KEYS[1], until_ms, 'PX', tonumber(ARGV[1]) + 1000)
end
return until_ms - now
"""


@dataclass(frozen=True)
class Quota:
    """One model's limits: requests and input tokens per minute (0: no limit)."""

    rpm: int = 0
    tpm: int = 0

    @property
    def unlimited(self) -> bool:
        """Whether nothing is counted for this model."""
        return self.rpm <= 0 and self.tpm <= 0


@dataclass(frozen=True)
class Booking:
    """A call's place in its model's window: settle it with what the call really cost."""

    model: str
    id: str
    tokens: int


class RateLimiter(Protocol):
    """Something that lets model calls out at the quota's rate."""

    def acquire(self, model: str, timeout_s: float, tokens: int = 0) -> Booking | None:
        """Block until a call to ``model`` may go out; ``RetryableModelError`` if not soon."""

    def settle(self, booking: Booking, tokens: int) -> None:
        """Record what a booked call really cost in input tokens."""

    def hold_off(self, model: str, seconds: float) -> None:
        """Let no call to ``model`` out for ``seconds`` (Gemini answered 429 anyway)."""


class RedisRateLimiter:
    """Requests and tokens per minute per model, shared through Redis, first come first
    served (see the module's docstring)."""

    def __init__(
        self,
        redis: redis.Redis[str],
        quotas: Mapping[str, Quota],
        *,
        default: Quota = Quota(),
        key_prefix: str = "refract:ratelimit",
        window_s: float = WINDOW_S,
        margin_s: float = MARGIN_S,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``quotas`` by model name; a model not named there gets ``default``. ``clock``
        and ``sleep`` only measure and spend the caller's wait: the window itself runs on
        Redis's clock."""
        if any(q.rpm < 0 or q.tpm < 0 for q in (*quotas.values(), default)):
            raise ValueError("rpm and tpm must be 0 (unlimited) or more")
        self.redis = redis
        self.quotas = dict(quotas)
        self.default = default
        self.key_prefix = key_prefix
        self.span_ms = int((window_s + margin_s) * 1000)
        self._sleep = sleep
        self._clock = clock
        self._reserve = redis.register_script(_RESERVE)
        self._settle = redis.register_script(_SETTLE)
        self._hold = redis.register_script(_HOLD)

    def quota(self, model: str) -> Quota:
        """The limits in force for ``model``."""
        return self.quotas.get(model, self.default)

    def key(self, model: str) -> str:
        """The Redis key holding ``model``'s bookings."""
        return f"{self.key_prefix}:{model}"

    def hold_key(self, model: str) -> str:
        """The Redis key holding ``model``'s hold-off, if any."""
        return f"{self.key_prefix}:{model}:hold"

    def book(
        self, model: str, tokens: int = 0, max_wait_s: float = 0.0
    ) -> tuple[Booking | None, float]:
        """Book the earliest moment a call may go out, if it is within ``max_wait_s``:
        ``(booking, seconds to wait)``; ``(None, seconds)`` when it is further away."""
        quota = self.quota(model)
        booking_id = uuid.uuid4().hex
        tokens = max(0, int(tokens))
        booked, wait_ms = self._reserve(
            keys=[self.key(model), self.hold_key(model)],
            args=[
                self.span_ms,
                quota.rpm,
                quota.tpm,
                tokens,
                booking_id,
                int(max(0.0, max_wait_s) * 1000),
            ],
        )
        wait_s = max(0, int(wait_ms)) / 1000.0
        return (Booking(model, booking_id, tokens) if int(booked) else None), wait_s

    def acquire(self, model: str, timeout_s: float, tokens: int = 0) -> Booking | None:
        """Block until a call to ``model`` (of about ``tokens`` input tokens) may go out.

        Returns its booking (``None`` for a model without limits). Raises
        ``RetryableModelError('rate_limited')`` with the expected wait as ``retry_after``
        when no moment within ``timeout_s`` is free.
        """
        if self.quota(model).unlimited:
            return None
        started = self._clock()
        failures = 0
        while True:
            left = timeout_s - (self._clock() - started)
            try:
                booking, wait_s = self.book(model, tokens, max_wait_s=max(0.0, left))
                break
            except _UNREACHABLE as exc:
                failures += 1
                self._wait_for_redis(model, failures, left, exc)
        if booking is None:
            raise RetryableModelError(
                "rate_limited",
                f"the shared quota for {model} ({self._describe(model)}) is taken; the next "
                f"free moment is in {wait_s:.1f}s",
                retry_after=wait_s,
            )
        if wait_s > 0:
            # A canceled feature stops waiting for a moment it no longer needs (its booking
            # then goes unused: the quota is not overrun, only a moment is lost).
            interrupt.wait(wait_s, self._sleep, "waiting for the rate limit")
        metrics.limiter_wait(model, self._clock() - started)
        return booking

    def settle(self, booking: Booking, tokens: int) -> None:
        """Record the input tokens a booked call really cost (best effort)."""
        if tokens == booking.tokens or self.quota(booking.model).tpm <= 0:
            return
        try:
            self._settle(
                keys=[self.key(booking.model)], args=[booking.id, booking.tokens, max(0, tokens)]
            )
        except redis.RedisError as exc:  # the estimate stands: the window corrects itself
            log.warning("rate_limit_not_settled", model=booking.model, error=type(exc).__name__)

    def hold_off(self, model: str, seconds: float) -> None:
        """Hold every call to ``model`` back for ``seconds`` from now (Redis's now)."""
        try:
            self._hold(keys=[self.hold_key(model)], args=[int(max(0.0, seconds) * 1000)])
        except redis.RedisError as exc:  # each call still waits its own retry delay
            log.warning("rate_limit_hold_not_set", model=model, error=type(exc).__name__)

    def _describe(self, model: str) -> str:
        quota = self.quota(model)
        parts = [f"{quota.rpm} requests"] if quota.rpm else []
        parts += [f"{quota.tpm} input tokens"] if quota.tpm else []
        return " and ".join(parts) + " per minute"

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
