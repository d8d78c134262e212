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
from typing import Any

import redis

from refract.access.rates import Rate

# KEYS[1]: the bucket. ARGV: now (ms), window (ms), count.
# Returns {allowed (0|1), remaining, ms until the bucket is full again, ms to wait}.
# With a KEYS[2] (a hash) and more ARGV (its fields), the reply goes on with the values
# of those fields (nil for a missing one): a request counted and its data read at once.
_GCRA = """
local function count()
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
end
local reply = count()
if #KEYS > 1 then
  local found = redis.call('HMGET', KEYS[2], unpack(ARGV, 4))
  for i = 1, #ARGV - 3 do reply[4 + i] = found[i] end
end
return reply
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
        key, args = self._key_args(policy, who, rate)
        return self._decision(rate, self._script(keys=[key], args=args))

    def hit_and_read(
        self, policy: str, who: str, rate: Rate, hash_key: str, fields: tuple[str, ...]
    ) -> tuple[Decision, list[str | None]]:
        """:meth:`hit`, and the values of ``fields`` of the hash at ``hash_key`` read in
        the same script (``None`` for a missing one). Raises ``redis.RedisError``.

        The API's reads count the request and read the job's snapshot at once: one
        command, one round trip to Redis per read.
        """
        key, args = self._key_args(policy, who, rate)
        reply = self._script(keys=[key, hash_key], args=[*args, *fields])
        values = list(reply[4:]) + [None] * (len(fields) - len(reply[4:]))
        return self._decision(rate, reply[:4]), values

    def _key_args(self, policy: str, who: str, rate: Rate) -> tuple[str, list[int]]:
        now_ms = int(self._clock() * 1000)
        return f"{self.key_prefix}:{policy}:{who}", [now_ms, rate.window_s * 1000, rate.count]

    @staticmethod
    def _decision(rate: Rate, reply: Any) -> Decision:
        allowed, remaining, reset_ms, wait_ms = reply
        return Decision(
            allowed=bool(int(allowed)),
            limit=rate.count,
            window_s=rate.window_s,
            remaining=max(0, int(remaining)),
            reset_s=math.ceil(int(reset_ms) / 1000),
            retry_after_s=max(1, math.ceil(int(wait_ms) / 1000)) if not int(allowed) else 0,
        )
