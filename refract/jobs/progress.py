"""The progress bus: a Redis snapshot of each job and a Redis stream of its events.

Every change to a job is published here once its transaction has committed (never a
state that could still roll back), carrying the committed version: a snapshot is only
replaced by a newer version, so a late publish never overwrites a newer state.
The snapshot answers ``GET /api/v1/jobs/<id>`` fast; the stream feeds the Server-Sent
Events endpoint and lets a client resume with ``Last-Event-ID``. Redis may be lost at
any time: Postgres stays the record of truth and readers fall back to it.

A publish that fails (Redis unreachable for a moment) leaves the snapshot behind the
database, and nothing else would ever correct it: the job may not change again. So the
bus remembers the jobs it failed to publish and, given a way to reload a job's committed
state (:mod:`refract.jobs.resync`), republishes them from a thread of its own once Redis
answers again, within about a second.

An erased job (``DELETE``) leaves a short-lived marker behind its deleted keys: a worker
that committed a change just before the erasure publishes it just after, and the marker
makes that late publish a no-op instead of bringing the job's snapshot back.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import redis
import structlog

log = structlog.get_logger(__name__)

# How long an erased job's marker lasts: far longer than a publish can be late (one is
# sent right after its commit, within the client's 10 s socket timeout; a failed one is
# redone by the resync from the database, where an erased job no longer is).
ERASED_MARKER_S = 3600

# Overwrite the snapshot only with a newer version; append the events either way;
# nothing at all for an erased job (KEYS[3] marks it). The snapshot hash holds the
# version, the resource's JSON (``body``) and its ``status`` beside it, so that a read
# can answer a 304 (ETag and Retry-After) without parsing the body.
_PUBLISH = """
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local current = redis.call('HGET', KEYS[1], 'version')
if (not current) or tonumber(current) < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'version', ARGV[1], 'body', ARGV[2], 'status', ARGV[5])
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
local n = (#ARGV - 5) / 2
for i = 0, n - 1 do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', tonumber(ARGV[4]), '*',
             'type', ARGV[6 + 2 * i], 'data', ARGV[7 + 2 * i])
end
if n > 0 then redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3])) end
return 1
"""


@dataclass(frozen=True)
class Event:
    """One progress event: ``feature`` or ``job``, with its JSON data."""

    type: str
    data: dict[str, Any]


# The fields of a snapshot hash a read needs, in the order RawSnapshot takes them.
SNAPSHOT_FIELDS = ("version", "body", "status")


@dataclass(frozen=True)
class RawSnapshot:
    """A snapshot as stored: its version, its JSON text, and the job's status (``None``
    for a snapshot written before the status was stored beside it)."""

    version: int
    body: str
    status: str | None


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


# A job's committed state to republish: its version, snapshot and catch-up events, or
# None if the job no longer exists.
Reload = Callable[[str], "tuple[int, dict[str, Any], list[Event]] | None"]


class ProgressBus:
    """Writes and reads job snapshots and event streams in Redis.

    ``reload`` (optional) reads a job's committed state from the database: with it, a job
    whose publish failed is republished once Redis answers again (every
    ``resync_interval_s`` while any is behind).
    """

    def __init__(
        self,
        client: redis.Redis[str],
        *,
        maxlen: int = 1000,
        ttl_s: int = 7 * 86400,
        reload: Reload | None = None,
        resync_interval_s: float = 1.0,
    ):
        self.client = client
        self.maxlen = maxlen
        self.ttl_s = ttl_s
        self.reload = reload
        self.resync_interval_s = resync_interval_s
        self._publish = client.register_script(_PUBLISH)
        self._behind: set[str] = set()
        self._lock = threading.Lock()
        self._resyncer: threading.Thread | None = None

    @staticmethod
    def snapshot_key(job_id: str) -> str:
        """Where a job's snapshot hash lives."""
        return f"refract:job:{job_id}:snapshot"

    @staticmethod
    def stream_key(job_id: str) -> str:
        """Where a job's event stream lives."""
        return f"refract:job:{job_id}:events"

    @staticmethod
    def erased_key(job_id: str) -> str:
        """The marker of an erased job: publishing it does nothing while it lasts."""
        return f"refract:job:{job_id}:erased"

    def publish(
        self, job_id: str, version: int, snapshot: dict[str, Any], events: Iterable[Event]
    ) -> bool:
        """Store ``snapshot`` (if newer) and append ``events``; ``False`` if Redis failed.

        A Redis failure is logged, not raised: losing a progress update must never lose
        the database write it describes.
        """
        status = snapshot.get("status")
        args: list[Any] = [
            version,
            json.dumps(snapshot),
            self.ttl_s,
            self.maxlen,
            status if isinstance(status, str) else "",
        ]
        for event in events:
            args += [event.type, json.dumps(event.data)]
        try:
            keys = [self.snapshot_key(job_id), self.stream_key(job_id), self.erased_key(job_id)]
            self._publish(keys=keys, args=args)
        except redis.RedisError as exc:
            log.warning("progress_publish_failed", job_id=job_id, error=type(exc).__name__)
            self._fell_behind(job_id)
            return False
        with self._lock:
            self._behind.discard(job_id)
        return True

    def forget(self, job_id: str) -> None:
        """Delete the job's snapshot and events (the job was erased). With Redis out of
        reach the job counts as behind: the resync deletes them once it is back.

        A marker stays for :data:`ERASED_MARKER_S` so that a publish already on its way
        (a change committed just before the erasure) cannot bring them back."""
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.set(self.erased_key(job_id), "1", ex=ERASED_MARKER_S)
            pipe.delete(self.snapshot_key(job_id), self.stream_key(job_id))
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("progress_forget_failed", job_id=job_id, error=type(exc).__name__)
            self._fell_behind(job_id)
            return
        with self._lock:
            self._behind.discard(job_id)

    def behind(self) -> set[str]:
        """The jobs whose snapshot may be behind the database (a publish failed)."""
        with self._lock:
            return set(self._behind)

    def catch_up(self) -> int:
        """Republish every job that fell behind from its committed state; returns how
        many are still behind (Redis still down). One pass; the resync thread repeats it."""
        if self.reload is None:
            return len(self.behind())
        for job_id in sorted(self.behind()):
            try:
                state = self.reload(job_id)
            except Exception as exc:  # the database is down too: next pass
                log.warning("progress_resync_failed", job_id=job_id, error=type(exc).__name__)
                break
            if state is None:  # erased: nothing of it may stay in Redis either
                self.forget(job_id)
                if job_id in self.behind():
                    break  # Redis is still away
                continue
            version, snapshot, events = state
            if not self.publish(job_id, version, snapshot, events):
                break  # Redis is still away: the rest would fail the same way
            log.info("progress_resynced", job_id=job_id, version=version)
        return len(self.behind())

    def _fell_behind(self, job_id: str) -> None:
        with self._lock:
            self._behind.add(job_id)
            if self.reload is None or (self._resyncer and self._resyncer.is_alive()):
                return
            self._resyncer = threading.Thread(
                target=self._resync_until_caught_up, name="progress-resync", daemon=True
            )
            self._resyncer.start()

    def _resync_until_caught_up(self) -> None:
        # Ends once nothing is behind; the next failed publish starts another.
        while True:
            threading.Event().wait(self.resync_interval_s)
            if self.catch_up() == 0:
                with self._lock:
                    if not self._behind:
                        self._resyncer = None
                        return

    def snapshot(self, job_id: str) -> tuple[int, dict[str, Any]] | None:
        """The latest snapshot and its version, or ``None`` if Redis has none (or is down)."""
        raw = self.raw_snapshot(job_id)
        if raw is None:
            return None
        return raw.version, json.loads(raw.body)

    def raw_snapshot(self, job_id: str) -> RawSnapshot | None:
        """The latest snapshot as stored (its JSON unparsed), or ``None`` if Redis has
        none (or is down): the API's fast read path serves the text as it is."""
        try:
            found = self.client.hmget(self.snapshot_key(job_id), list(SNAPSHOT_FIELDS))
        except redis.RedisError as exc:
            log.warning("progress_snapshot_unavailable", job_id=job_id, error=str(exc))
            return None
        return self.raw_snapshot_from(found)

    @staticmethod
    def raw_snapshot_from(reply: Any) -> RawSnapshot | None:
        """The snapshot in the values of its hash's :data:`SNAPSHOT_FIELDS`, read by a
        caller that reads them with other commands (``None``: no snapshot)."""
        version, body, status = reply
        if version is None or body is None:
            return None
        return RawSnapshot(int(version), body, status or None)

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
