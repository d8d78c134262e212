"""The reconciler (run by beat): finds work that was never enqueued or got lost.

A job is committed before it is enqueued, so a broker outage or a crash between the two
leaves it ``queued`` with no message anywhere. Every few seconds this task looks for
jobs whose pending features have waited past the deadline and enqueues them again;
because every task is idempotent, an extra copy of a message is harmless.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import structlog
from celery import current_app, shared_task
from sqlalchemy import or_, select

from refract.core.models import Job, utcnow
from refract.jobs.catalog import RECONCILE_TASK, FeatureStatus, JobStatus
from refract.jobs.dispatch import enqueue, record_enqueued
from refract.jobs.readiness import claim_is_stale, inputs_final, inputs_queued
from tasks.services import WorkerServices, get_services

log = structlog.get_logger(__name__)

# A job whose submit-time enqueue failed is picked up after this grace period.
UNSENT_GRACE = timedelta(seconds=10)
MAX_BACKOFF_FACTOR = 16

# Sends a job's features to the broker (raises when it cannot).
Send = Callable[[uuid.UUID, list[str]], None]


def pending_features(job: Job, now: datetime, stale_after: timedelta) -> list[str]:
    """The features of ``job`` that should be (re)sent: queued, ready to run, or stale."""
    runs = {run.feature: run for run in job.features}
    pending = []
    for name, run in runs.items():
        if run.status == FeatureStatus.QUEUED.value:
            pending.append(name)
        elif run.status == FeatureStatus.WAITING.value:
            # Ready to run, or its inputs are being resent: resending the inputs alone
            # would lose the chord, so it goes with them.
            if inputs_final(name, runs) or inputs_queued(name, runs):
                pending.append(name)
        elif claim_is_stale(run, now, stale_after):
            pending.append(name)
    return pending


def is_due(job: Job, now: datetime, requeue_after: timedelta) -> bool:
    """Whether ``job`` has waited long enough since it was last sent (with backoff)."""
    if job.enqueued_at is None:
        return now - job.created_at > UNSENT_GRACE
    factor = min(1 << max(job.enqueue_count - 1, 0), MAX_BACKOFF_FACTOR)
    return now - job.enqueued_at > requeue_after * factor


def reconcile_once(
    services: WorkerServices,
    send: Send,
    *,
    requeue_after: timedelta,
    stale_after: timedelta,
    limit: int = 200,
) -> list[str]:
    """Re-send what is overdue through ``send``; returns the ids of the jobs sent again."""
    now = utcnow()
    resent: list[str] = []
    with services.session() as session:
        jobs = session.scalars(
            select(Job)
            .where(
                Job.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]),
                or_(Job.enqueued_at.is_(None), Job.enqueued_at < now - requeue_after),
            )
            .order_by(Job.created_at)
            .limit(limit)
        ).all()
        due = [
            (job.id, pending)
            for job in jobs
            if is_due(job, now, requeue_after)
            and (pending := pending_features(job, now, stale_after))
        ]
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


@shared_task(name=RECONCILE_TASK, ignore_result=True)
def reconcile() -> dict[str, Any]:
    """Beat's periodic sweep for lost or never-sent work."""
    services = get_services()
    settings = services.settings
    resent = reconcile_once(
        services,
        lambda job_id, features: enqueue(current_app, job_id, features),
        requeue_after=timedelta(seconds=settings.requeue_after_s),
        stale_after=timedelta(seconds=settings.claim_stale_after_s),
    )
    return {"requeued": resent}
