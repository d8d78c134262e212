"""What is waiting in the broker: the features that already have a message somewhere.

The reconciler resends work that looks lost; under a backlog, work that merely waits its
turn looks the same from the database (``queued``, sent a while ago). With a Redis broker
the messages can be looked at: a Celery message waits in its queue's list (one list per
priority step) until a worker takes it. A feature with a message there is not lost, and
is left alone.

A message a worker has taken sits in kombu's ``unacked`` hash until it is acknowledged,
and stays there if that worker dies (until the visibility timeout hands it out again),
so an old entry proves nothing about liveness: heartbeats answer that once the feature
has started. A message taken moments ago, though, is on its way to a thread of a live
worker (prefetched, or between the pop and the claim): those taken within
``taken_within_s`` count as waiting too, so the reconciler does not race a worker that is
about to start. If that worker dies instead, the entry ages past the window and the
feature, still queued, is sent again.

Only Refract's own feature tasks are recognised (by task name, job id as the only
argument); with another broker :func:`waiting_features` cannot tell and says so
(``None``), and the reconciler falls back to its timers.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import redis
import structlog

from refract.jobs.catalog import FEATURES

log = structlog.get_logger(__name__)

# kombu's Redis transport: a queue's list for priority n > 0 is "<queue>\x06\x16<n>".
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)
# Messages read per round trip: a long queue is read in slices, not in one reply.
CHUNK = 1000
# kombu's Redis transport: messages taken by a worker and not yet acknowledged.
UNACKED = "unacked"
UNACKED_INDEX = "unacked_index"

_FEATURE_OF_TASK = {spec.task_name: name for name, spec in FEATURES.items()}

# (job id, feature) of a message.
WorkKey = tuple[str, str]


def broker_client(broker_url: str) -> redis.Redis[bytes] | None:
    """A client of the broker's Redis, or ``None`` when the broker is not Redis."""
    if urlsplit(broker_url).scheme not in ("redis", "rediss"):
        return None
    return redis.Redis.from_url(broker_url, socket_timeout=5, socket_connect_timeout=5)


def waiting_features(
    client: redis.Redis[bytes],
    queues: Iterable[str],
    *,
    taken_within_s: float = 0.0,
    now: float | None = None,
) -> set[WorkKey] | None:
    """Every (job id, feature) with a message waiting in ``queues`` for a worker to take
    it, or taken by one in the last ``taken_within_s`` seconds; ``None`` if the broker
    could not be read (the caller then rules nothing out)."""
    try:
        found = {key for raw in _queued_messages(client, queues) if (key := work_of(raw))}
        if taken_within_s > 0:
            since = (now if now is not None else time.time()) - taken_within_s
            found |= {key for raw in _taken_since(client, since) if (key := work_of(raw))}
    except redis.RedisError as exc:
        log.warning("broker_unreadable", error=type(exc).__name__)
        return None
    return found


def _taken_since(client: redis.Redis[bytes], since: float) -> Iterator[Any]:
    """The messages workers took (and have not acknowledged) since ``since``."""
    # kombu keeps each taken message in UNACKED (tag -> [message, exchange, routing key])
    # and the time it was taken in UNACKED_INDEX (tag -> seconds since the epoch).
    tags = client.zrangebyscore(UNACKED_INDEX, since, "+inf")
    for start in range(0, len(tags), CHUNK):
        for raw in client.hmget(UNACKED, tags[start : start + CHUNK]):
            if raw is None:  # acknowledged meanwhile
                continue
            try:
                yield json.loads(raw)[0]
            except (ValueError, TypeError, IndexError):
                continue


def _queued_messages(client: redis.Redis[bytes], queues: Iterable[str]) -> Iterator[bytes]:
    for queue in queues:
        for step in PRIORITY_STEPS:
            key = f"{queue}{PRIORITY_SEPARATOR}{step}" if step else queue
            start = 0
            while True:
                chunk = client.lrange(key, start, start + CHUNK - 1)
                yield from chunk
                if len(chunk) < CHUNK:
                    break
                start += CHUNK


def work_of(message: Any) -> WorkKey | None:
    """The (job id, feature) a Celery message runs, or ``None`` if it is not a feature's."""
    try:
        if isinstance(message, bytes | str):
            message = json.loads(message)
        feature = _FEATURE_OF_TASK.get(message["headers"]["task"])
        if feature is None:
            return None
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return str(args[0]), feature
    except (ValueError, TypeError, KeyError, IndexError):
        return None


def queue_depths(client: redis.Redis[bytes], queues: Iterable[str]) -> dict[str, int]:
    """How many messages wait in each queue (every priority step), not yet taken by a
    worker; raises ``redis.RedisError`` if the broker cannot be read."""
    names = list(queues)
    pipe = client.pipeline(transaction=False)
    for queue in names:
        for step in PRIORITY_STEPS:
            pipe.llen(f"{queue}{PRIORITY_SEPARATOR}{step}" if step else queue)
    lengths = pipe.execute()
    steps = len(PRIORITY_STEPS)
    return {
        queue: sum(int(n) for n in lengths[i * steps : (i + 1) * steps])
        for i, queue in enumerate(names)
    }
