"""What is waiting in the broker: the features that already have a message somewhere.

The reconciler resends work that looks lost; under a backlog, work that merely waits its
turn looks the same from the database (``queued``, sent a while ago). With a Redis broker
the messages can be looked at: a Celery message waits in its queue's list (one list per
priority step) until a worker takes it. A feature with a message there is not lost, and
is left alone.

A message a worker has taken sits in kombu's ``unacked`` hash until it is acknowledged,
and stays there if that worker dies (until the visibility timeout hands it out again),
so it proves nothing about liveness: heartbeats answer that, and those messages are not
counted here.

Only Refract's own feature tasks are recognised (by task name, job id as the only
argument); with another broker :func:`waiting_features` cannot tell and says so
(``None``), and the reconciler falls back to its timers.
"""

from __future__ import annotations

import base64
import json
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

_FEATURE_OF_TASK = {spec.task_name: name for name, spec in FEATURES.items()}

# (job id, feature) of a message.
WorkKey = tuple[str, str]


def broker_client(broker_url: str) -> redis.Redis[bytes] | None:
    """A client of the broker's Redis, or ``None`` when the broker is not Redis."""
    if urlsplit(broker_url).scheme not in ("redis", "rediss"):
        return None
    return redis.Redis.from_url(broker_url, socket_timeout=5, socket_connect_timeout=5)


def waiting_features(client: redis.Redis[bytes], queues: Iterable[str]) -> set[WorkKey] | None:
    """Every (job id, feature) with a message waiting in ``queues`` for a worker to take
    it; ``None`` if the broker could not be read (the caller then rules nothing out)."""
    try:
        found = {key for raw in _queued_messages(client, queues) if (key := work_of(raw))}
    except redis.RedisError as exc:
        log.warning("broker_unreadable", error=type(exc).__name__)
        return None
    return found


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
