"""Per-key request rates, counted in Redis so that every API process and host shares them.

The limit is a GCRA (generic cell rate algorithm, a leaky bucket without a background
drip): each key has a "theoretical arrival time" in Redis; a request moves it on by one
emission interval (window / count) and is refused if that would put it more than a whole
window ahead of now. One Lua script reads and moves it, so two API processes can never
both take the last slot. It allows bursts of up to ``count`` requests, then one every
interval — the same budget a fixed window gives, without its edge-of-window double burst.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from refract.access.rates import Rate

# KEYS[1]: the bucket. ARGV: now (ms), window (ms), count.
# Returns {allowed (0|1), remaining, ms until the bucket is full again, ms to wait}.
_GCRA = """
local now = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local interval = period / limit
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - period
if allow_at > now then
  return {0, 0, math.ceil(tat - now), math.ceil(allow_at - now)}
end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1)
local remaining = math.floor((period - (new_tat - now)) / interval)
return {1, remaining, math.ceil(new_tat - now), 0}
"""


@dataclass(frozen=True)
class Decision:
    """What the limiter said about one request."""

    allowed: bool
    limit: int
    window_s: int
    remaining: int
    # Seconds until the bucket is full again (the draft's ``t``), and until the next
    # request may go through (``Retry-After``; 0 when allowed).
    reset_s: int
    retry_after_s: int


class RateLimiter:
    """Checks and counts requests per bucket (``policy:who``) against a :class:`Rate`."""

    def __init__(
        self,
        client: redis.Redis[str],
        *,
        key_prefix: str = "refract:rate",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.key_prefix = key_prefix
        self._clock = clock
        self._script = client.register_script(_GCRA)

    def hit(self, policy: str, who: str, rate: Rate) -> Decision:
        """Count one request of ``who`` under ``policy``; raises ``redis.RedisError``."""
        now_ms = int(self._clock() * 1000)
        key = f"{self.key_prefix}:{policy}:{who}"
        allowed, remaining, reset_ms, wait_ms = self._script(
            keys=[key], args=[now_ms, rate.window_s * 1000, rate.count]
        )
        return Decision(
            allowed=bool(int(allowed)),
            limit=rate.count,
            window_s=rate.window_s,
            remaining=max(0, int(remaining)),
            reset_s=math.ceil(int(reset_ms) / 1000),
            retry_after_s=max(1, math.ceil(int(wait_ms) / 1000)) if not int(allowed) else 0,
        )
