"""Which workers are online: each worker process says so in Redis every few seconds.

A worker writes ``refract:workers:<hostname>`` (what it consumes, its concurrency, its
pid) with a time to live of three intervals; one that stops (shut down, killed, its host
lost) disappears within that time. Flower shows the same from Celery's events, but only
to whoever runs Flower; this works for every API process with nothing else running.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import redis
import structlog

log = structlog.get_logger(__name__)

PREFIX = "refract:workers:"
INTERVAL_S = 5.0


class Presence:
    """The background thread that keeps this worker's entry alive."""

    def __init__(
        self,
        client: redis.Redis[str],
        hostname: str,
        queues: Sequence[str],
        concurrency: int,
        interval_s: float = INTERVAL_S,
    ) -> None:
        """Describe this worker; nothing is written until :meth:`start`."""
        self.client = client
        self.key = PREFIX + hostname
        self.interval_s = interval_s
        self.entry = {
            "hostname": hostname,
            "queues": list(queues),
            "concurrency": concurrency,
            "pid": os.getpid(),
            "started_at": time.time(),
        }
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> None:
        """Write the entry once, with its time to live."""
        ttl_ms = int(self.interval_s * 3 * 1000)
        self.client.set(self.key, json.dumps({**self.entry, "seen_at": time.time()}), px=ttl_ms)

    def start(self) -> None:
        """Write now and then every interval, from a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="refract-presence", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop writing and remove the entry (a clean shutdown shows at once)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 1)
        # If Redis cannot be told, the entry expires on its own.
        with contextlib.suppress(redis.RedisError):
            self.client.delete(self.key)

    def _run(self) -> None:
        while True:
            try:
                self.beat()
            except redis.RedisError as exc:  # Redis restarting: the next beat catches up
                log.warning("presence_not_written", error=type(exc).__name__)
            if self._stopping.wait(self.interval_s):
                return


def workers_online(client: redis.Redis[str]) -> list[dict[str, Any]]:
    """Every worker whose entry is alive, by hostname."""
    keys = sorted(client.scan_iter(match=PREFIX + "*", count=100))
    if not keys:
        return []
    found = []
    for raw in client.mget(keys):
        if raw:
            try:
                found.append(json.loads(raw))
            except ValueError:
                continue
    return found
