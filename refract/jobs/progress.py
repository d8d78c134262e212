"""The progress bus: a Redis snapshot of each job and a Redis stream of its events.

Every change to a job is published here once its transaction has committed (never a
state that could still roll back), carrying the committed version: a snapshot is only
replaced by a newer version, so a late publish never overwrites a newer state.
The snapshot answers ``GET /api/v1/jobs/<id>`` fast; the stream feeds the Server-Sent
Events endpoint and lets a client resume with ``Last-Event-ID``. Redis may be lost at
any time: Postgres stays the record of truth and readers fall back to it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis
import structlog

log = structlog.get_logger(__name__)

# Overwrite the snapshot only with a newer version; append the events either way.
_PUBLISH = """
local current = redis.call('HGET', KEYS[1], 'version')
if (not current) or tonumber(current) < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'version', ARGV[1], 'body', ARGV[2])
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
local n = (#ARGV - 4) / 2
for i = 0, n - 1 do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', tonumber(ARGV[4]), '*',
             'type', ARGV[5 + 2 * i], 'data', ARGV[6 + 2 * i])
end
if n > 0 then redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3])) end
return 1
"""


@dataclass(frozen=True)
class Event:
    """One progress event: ``feature`` or ``job``, with its JSON data."""

    type: str
    data: dict[str, Any]


@dataclass(frozen=True)
class StreamEntry:
    """An event as read back from the stream, with its stream id (the SSE ``id``)."""

    id: str
    type: str
    data: dict[str, Any]


def redis_from_url(url: str) -> redis.Redis[str]:
    """A Redis client for progress, limits and caches (text in, text out)."""
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=10,
        socket_connect_timeout=5,
        health_check_interval=30,
    )


class ProgressBus:
    """Writes and reads job snapshots and event streams in Redis."""

    def __init__(self, client: redis.Redis[str], *, maxlen: int = 1000, ttl_s: int = 7 * 86400):
        self.client = client
        self.maxlen = maxlen
        self.ttl_s = ttl_s
        self._publish = client.register_script(_PUBLISH)

    @staticmethod
    def snapshot_key(job_id: str) -> str:
        """Where a job's snapshot hash lives."""
        return f"refract:job:{job_id}:snapshot"

    @staticmethod
    def stream_key(job_id: str) -> str:
        """Where a job's event stream lives."""
        return f"refract:job:{job_id}:events"

    def publish(
        self, job_id: str, version: int, snapshot: dict[str, Any], events: Iterable[Event]
    ) -> bool:
        """Store ``snapshot`` (if newer) and append ``events``; ``False`` if Redis failed.

        A Redis failure is logged, not raised: losing a progress update must never lose
        the database write it describes.
        """
        args: list[Any] = [version, json.dumps(snapshot), self.ttl_s, self.maxlen]
        for event in events:
            args += [event.type, json.dumps(event.data)]
        try:
            self._publish(keys=[self.snapshot_key(job_id), self.stream_key(job_id)], args=args)
        except redis.RedisError as exc:
            log.warning("progress_publish_failed", job_id=job_id, error=str(exc))
            return False
        return True

    def snapshot(self, job_id: str) -> tuple[int, dict[str, Any]] | None:
        """The latest snapshot and its version, or ``None`` if Redis has none (or is down)."""
        try:
            found = self.client.hmget(self.snapshot_key(job_id), ["version", "body"])
        except redis.RedisError as exc:
            log.warning("progress_snapshot_unavailable", job_id=job_id, error=str(exc))
            return None
        version, body = found
        if version is None or body is None:
            return None
        return int(version), json.loads(body)

    def read(
        self, job_id: str, after: str = "0", *, block_ms: int | None = None, count: int = 100
    ) -> list[StreamEntry]:
        """Events after stream id ``after``, waiting up to ``block_ms`` for new ones."""
        reply = self.client.xread({self.stream_key(job_id): after}, count=count, block=block_ms)
        entries: list[StreamEntry] = []
        for _key, items in reply or []:
            for entry_id, fields in items:
                entries.append(
                    StreamEntry(
                        entry_id,
                        fields.get("type", "message"),
                        json.loads(fields.get("data", "{}")),
                    )
                )
        return entries
