"""Admission control: whether a new job may be taken now, or the crowd must wait.

Two things close intake for new submissions (reads, events and artifacts never stop):

- **Backlog.** More than ``max_backlog`` features queued and not started, or the oldest
  of them waiting longer than ``max_queue_wait_s``: the workers are not keeping up, and a
  visitor would wait longer than any booth can. The answer's ``Retry-After`` comes from
  how fast the queue drains now (features finished in the last minute).
- **Paused.** An operator paused intake (``refract intake pause``; later the dashboard):
  a flag in Redis, shared by every API process, that survives their restarts. If Redis
  is flushed or unreachable intake counts as open — a lost flag must not shut a booth.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from refract.core.models import FeatureRun, utcnow
from refract.jobs.catalog import FeatureStatus

log = structlog.get_logger(__name__)

PAUSED_KEY = "refract:intake:paused"
DRAIN_WINDOW = timedelta(seconds=60)
RETRY_AFTER_MIN_S, RETRY_AFTER_MAX_S = 1, 300


@dataclass(frozen=True)
class Backlog:
    """The queues as the database sees them."""

    waiting: int  # features queued, not started
    oldest_wait_s: float  # how long the oldest of them has waited
    drained_per_s: float  # features finished per second, over the last minute

    def retry_after_s(self) -> int:
        """When a refused client should come back: the time to drain the backlog."""
        if self.drained_per_s <= 0:
            return 30
        seconds = math.ceil(self.waiting / self.drained_per_s)
        return max(RETRY_AFTER_MIN_S, min(RETRY_AFTER_MAX_S, seconds))


def measure(session: Session, now: datetime | None = None) -> Backlog:
    """Count the backlog (two indexed aggregate queries)."""
    now = now or utcnow()
    waiting, oldest = session.execute(
        select(func.count(), func.min(FeatureRun.queued_at)).where(
            FeatureRun.status == FeatureStatus.QUEUED.value, FeatureRun.started_at.is_(None)
        )
    ).one()
    drained = session.scalar(
        select(func.count()).where(FeatureRun.finished_at > now - DRAIN_WINDOW)
    )
    oldest_wait = (now - oldest).total_seconds() if oldest is not None else 0.0
    return Backlog(int(waiting), max(0.0, oldest_wait), (drained or 0) / DRAIN_WINDOW.seconds)


def overloaded(backlog: Backlog, max_backlog: int, max_wait_s: float) -> str | None:
    """Why new jobs must wait, or ``None`` when they may come in."""
    if backlog.waiting > max_backlog:
        return f"{backlog.waiting} features are waiting for a worker (limit {max_backlog})"
    if backlog.oldest_wait_s > max_wait_s:
        return f"the oldest queued feature has waited {backlog.oldest_wait_s:.0f}s"
    return None


class BacklogGauge:
    """The backlog, measured at most once per ``max_age_s`` per process: at a crowd's
    rate of submissions, one count a second is plenty and spares the database."""

    def __init__(self, max_age_s: float = 1.0) -> None:
        self.max_age_s = max_age_s
        self._last: tuple[float, Backlog] | None = None
        self._lock = threading.Lock()
        self._measuring = False

    def read(self, session: Session) -> Backlog:
        """The latest measure, refreshed when older than ``max_age_s``.

        One request refreshes it; the others meanwhile take the last measure (a second
        old) instead of all counting at once when a crowd's second ticks over.
        """
        with self._lock:
            last = self._last
            if last is not None and (
                self._measuring or time.monotonic() - last[0] < self.max_age_s
            ):
                return last[1]
            self._measuring = True
        try:
            backlog = measure(session)
        finally:
            with self._lock:
                self._measuring = False
        with self._lock:
            self._last = (time.monotonic(), backlog)
        return backlog


def pause_intake(client: redis.Redis[str], by: str) -> None:
    """Close intake for new jobs until :func:`resume_intake`."""
    client.set(PAUSED_KEY, f"{by} at {utcnow().isoformat(timespec='seconds')}")


def resume_intake(client: redis.Redis[str]) -> None:
    """Open intake again."""
    client.delete(PAUSED_KEY)


def intake_paused(client: redis.Redis[str]) -> str | None:
    """Who paused intake and when, or ``None`` if it is open (or Redis cannot tell)."""
    try:
        return client.get(PAUSED_KEY)
    except redis.RedisError as exc:
        log.warning("intake_flag_unreadable", error=type(exc).__name__)
        return None
