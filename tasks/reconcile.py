"""The reconciler (run by beat): finds work that was never enqueued or got lost.

What it resends, and when:

- **Never picked up.** A job is committed before it is enqueued, so a broker outage or a
  crash between the two leaves features ``queued`` with no message anywhere. They are
  resent once the job has waited ``requeue_after_s`` since it was last sent (doubling
  each time, so a long backlog is not flooded with copies); a job never sent at all is
  picked up after a short grace.
- **Lost worker.** A ``running`` feature whose heartbeat stopped for ``heartbeat_timeout_s``
  is resent at once: its worker died. One whose heartbeat is alive is never resent.
- **Lost chord callback.** A waiting feature (``card``) whose inputs all finished more than
  ``heartbeat_timeout_s`` ago never got its callback (the chord's state lived in a Redis
  that was lost): it is sent on its own.

Before any of that, what already has a message waiting in its broker queue is not lost
and is never resent (:mod:`refract.jobs.queues`): under a backlog, queued work only waits
its turn. Every task is idempotent, so an extra copy of a message would be harmless, but
it is load; recovery sends are also spaced by
``heartbeat_timeout_s`` per job.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from celery import current_app, shared_task
from sqlalchemy import or_, select

from refract.core.models import FeatureRun, Job, utcnow
from refract.jobs.catalog import ALL_QUEUES, FEATURES, RECONCILE_TASK, FeatureStatus, JobStatus
from refract.jobs.dispatch import enqueue, record_enqueued
from refract.jobs.queues import WorkKey, broker_client, waiting_features
from refract.jobs.readiness import (
    heartbeat_stopped,
    inputs_final,
    inputs_finished_at,
    inputs_queued,
)
from tasks.services import WorkerServices, get_services

log = structlog.get_logger(__name__)

# A job whose submit-time enqueue failed is picked up after this grace period.
UNSENT_GRACE = timedelta(seconds=10)
MAX_BACKOFF_FACTOR = 16

# Sends a job's features to the broker (raises when it cannot).
Send = Callable[[uuid.UUID, list[str]], None]


@dataclass(frozen=True)
class Timing:
    """When the reconciler considers work overdue."""

    requeue_after: timedelta
    heartbeat_timeout: timedelta


def is_due(job: Job, now: datetime, requeue_after: timedelta) -> bool:
    """Whether ``job``'s never-picked-up work has waited long enough since it was last
    sent (with backoff)."""
    if job.enqueued_at is None:
        return now - job.created_at > UNSENT_GRACE
    factor = min(1 << max(job.enqueue_count - 1, 0), MAX_BACKOFF_FACTOR)
    return now - job.enqueued_at > requeue_after * factor


def pending_features(
    job: Job, now: datetime, timing: Timing, in_broker: frozenset[str] = frozenset()
) -> list[str]:
    """The features of ``job`` to send again now (see the module's rules); ``in_broker``
    names those of its features that have a message in the broker already."""
    runs = {run.feature: run for run in job.features}
    pending = _overdue_features(runs, job, now, timing)
    # A waiting feature sent along with its queued inputs rides on their chord: when
    # those are still in the broker, so is it.
    return [
        name
        for name in pending
        if name not in in_broker
        and not (inputs_queued(name, runs) and set(FEATURES[name].needs) & in_broker)
    ]


def _overdue_features(
    runs: dict[str, FeatureRun], job: Job, now: datetime, timing: Timing
) -> list[str]:
    """The features of ``job`` overdue by the timers alone."""
    backlog_due = is_due(job, now, timing.requeue_after)
    # Recovery sends are spaced too: the copy sent last time may not have started yet.
    recovery_due = job.enqueued_at is None or now - job.enqueued_at > timing.heartbeat_timeout
    pending = []
    for name, run in runs.items():
        if run.status == FeatureStatus.QUEUED.value:
            if backlog_due:
                pending.append(name)
        elif run.status == FeatureStatus.WAITING.value:
            if inputs_queued(name, runs):
                # Resending the inputs alone would lose the chord: send it with them.
                if backlog_due:
                    pending.append(name)
            elif inputs_final(name, runs):
                finished = inputs_finished_at(name, runs)
                lost = finished is None or now - finished > timing.heartbeat_timeout
                if recovery_due and lost:
                    pending.append(name)
        elif heartbeat_stopped(run, now, timing.heartbeat_timeout) and recovery_due:
            pending.append(name)
    return pending


def reconcile_once(
    services: WorkerServices,
    send: Send,
    *,
    timing: Timing,
    limit: int = 200,
    in_broker: Callable[[], set[WorkKey] | None] = lambda: None,
) -> list[str]:
    """Re-send what is overdue through ``send``; returns the ids of the jobs sent again.

    ``in_broker`` tells which (job id, feature) have a message in the broker now
    (``None``: it cannot tell); it is asked only when something looks overdue.
    """
    now = utcnow()
    resent: list[str] = []
    soonest = min(timing.requeue_after, timing.heartbeat_timeout)
    with services.session() as session:
        jobs = session.scalars(
            select(Job)
            .where(
                Job.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]),
                or_(Job.enqueued_at.is_(None), Job.enqueued_at < now - soonest),
            )
            .order_by(Job.created_at)
            .limit(limit)
        ).all()
        overdue = [job for job in jobs if _overdue_features(_runs(job), job, now, timing)]
        waiting = in_broker() if overdue else None
        due = []
        for job in overdue:
            mine = frozenset(f for j, f in waiting or () if j == str(job.id))
            if pending := pending_features(job, now, timing, mine):
                due.append((job.id, pending))
            else:
                log.debug("reconcile_left_waiting", job_id=str(job.id), features=sorted(mine))
    for job_id, pending in due:
        try:
            send(job_id, pending)
        except Exception as exc:  # broker still down: try again next round
            log.warning("reconcile_enqueue_failed", job_id=str(job_id), error=str(exc))
            continue
        with services.session() as session:
            record_enqueued(session, job_id)
        log.info("reconcile_requeued", job_id=str(job_id), features=pending)
        resent.append(str(job_id))
    return resent


def _runs(job: Job) -> dict[str, FeatureRun]:
    return {run.feature: run for run in job.features}


@shared_task(name=RECONCILE_TASK, ignore_result=True)
def reconcile() -> dict[str, Any]:
    """Beat's periodic sweep for lost or never-sent work."""
    services = get_services()
    settings = services.settings
    broker = broker_client(settings.effective_broker_url)

    def in_broker() -> set[WorkKey] | None:
        if broker is None:
            return None
        # A message taken within the reconciler's patience is on its way to a thread.
        return waiting_features(broker, ALL_QUEUES, taken_within_s=settings.requeue_after_s)

    try:
        resent = reconcile_once(
            services,
            lambda job_id, features: enqueue(current_app, job_id, features),
            timing=Timing(
                requeue_after=timedelta(seconds=settings.requeue_after_s),
                heartbeat_timeout=timedelta(seconds=settings.heartbeat_timeout_s),
            ),
            in_broker=in_broker,
        )
    finally:
        if broker is not None:
            broker.close()
    return {"requeued": resent}
