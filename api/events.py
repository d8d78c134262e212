"""The Server-Sent Events stream of a job: replay, follow, end after the final event.

Events come from the job's Redis stream (:class:`refract.jobs.progress.ProgressBus`); their
stream ids are the SSE ``id``s, so a client reconnecting with ``Last-Event-ID`` resumes
exactly where it stopped. The generator holds no database session and no Flask context:
under gunicorn's threaded workers a stream occupies one thread and one Redis connection
for at most ``sse_max_duration_s``, then the client reconnects.

Redis may have lost a finished job's stream (it is a cache; Postgres is the record).
Then the final state is told from the database instead, with ids ``0-1``, ``0-2``, ...
which sort before any real stream id.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator

import redis
import structlog
from sqlalchemy.orm import Session

from refract.core.models import Job
from refract.jobs.catalog import FINAL_JOB_STATUSES
from refract.jobs.progress import ProgressBus, StreamEntry
from refract.jobs.state import feature_event, job_event
from refract.jobs.store import get_job

log = structlog.get_logger(__name__)

EVENT_ID_RE = re.compile(r"\d{1,20}(?:-\d{1,20})?")
# How long EventSource waits before reconnecting after the server ends a stream.
RECONNECT_MS = 2000
# Upper bound of one job's stream (it is trimmed to ``event_stream_maxlen``).
_READ_ALL = 100_000


def stream_id(value: str) -> tuple[int, int]:
    """A stream id as a comparable pair; ``"0"`` is ``(0, 0)``."""
    millis, _, seq = value.partition("-")
    return int(millis), int(seq or 0)


def is_final(entry: StreamEntry) -> bool:
    """Whether ``entry`` is the job's final ``job`` event."""
    return entry.type == "job" and entry.data.get("final") is True


def format_event(entry: StreamEntry) -> str:
    """One SSE frame (JSON on one line: ``json.dumps`` escapes newlines)."""
    data = json.dumps(entry.data, separators=(",", ":"))
    return f"id: {entry.id}\nevent: {entry.type}\ndata: {data}\n\n"


def final_state_events(job: Job) -> list[StreamEntry]:
    """A finished job told from the database: one event per feature, then the job's."""
    job_id = str(job.id)
    events = [feature_event(job_id, run) for run in job.features] + [job_event(job)]
    return [StreamEntry(f"0-{i}", event.type, event.data) for i, event in enumerate(events, 1)]


def open_stream(
    session: Session,
    bus: ProgressBus,
    job_id: str,
    after: str,
    *,
    block_ms: int,
    max_duration_s: float,
) -> Iterator[str] | None:
    """The frames to send for ``job_id`` after event ``after``; ``None`` means 204.

    Reads the job once (``NotFound`` for an unknown id) and returns a generator that
    needs neither the session nor the request.
    """
    job = get_job(session, job_id)
    job_id = str(job.id)
    if job.status not in FINAL_JOB_STATUSES:
        return _follow(bus, job_id, after, block_ms=block_ms, max_duration_s=max_duration_s)
    try:
        stored = bus.read(job_id, "0", count=_READ_ALL)
    except redis.RedisError as exc:
        log.warning("event_stream_unavailable", job_id=job_id, error=str(exc))
        stored = []
    finals = [stream_id(entry.id) for entry in stored if is_final(entry)]
    resume = stream_id(after)
    if any(final > resume for final in finals):
        # The final event is still ahead of the client: replay up to it.
        return _follow(bus, job_id, after, block_ms=block_ms, max_duration_s=max_duration_s)
    if finals or (resume[0] == 0 and resume[1] > 0):
        return None  # the client has had the final event (real or told from the database)
    # No final event in Redis: the stream was lost. Tell the end from the database (also
    # to a client that had real events before the loss: it never saw the final one).
    return _replay(final_state_events(job))


def _replay(entries: list[StreamEntry]) -> Iterator[str]:
    yield f"retry: {RECONNECT_MS}\n\n"
    for entry in entries:
        yield format_event(entry)


def _follow(
    bus: ProgressBus,
    job_id: str,
    after: str,
    *,
    block_ms: int,
    max_duration_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[str]:
    """Replay after ``after``, then follow until the final event or the time limit."""
    yield f"retry: {RECONNECT_MS}\n\n"
    deadline = clock() + max_duration_s
    last = after
    while True:
        remaining_ms = int((deadline - clock()) * 1000)
        if remaining_ms <= 0:
            return
        try:
            entries = bus.read(job_id, last, block_ms=max(1, min(block_ms, remaining_ms)))
        except redis.RedisError as exc:
            # The client reconnects (after RECONNECT_MS) and resumes from `last`.
            log.warning("event_stream_read_failed", job_id=job_id, error=str(exc))
            return
        if not entries:
            yield ": keep-alive\n\n"
            continue
        for entry in entries:
            yield format_event(entry)
            last = entry.id
            if is_final(entry):
                return
