"""The reconciler (run by beat): finds work that was never enqueued or got lost.

A job is committed before it is enqueued, so a broker outage or a crash between the two
leaves it ``queued`` with no message anywhere. Every few seconds this task looks for
jobs whose pending features have waited past the deadline and enqueues them again;
because every task is idempotent, an extra copy of a message is harmless.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from celery import current_app, shared_task
from sqlalchemy import or_, select

from refract.core.db import session_scope
from refract.core.models import Job, utcnow
from refract.jobs.catalog import (
    FEATURES,
    FINAL_FEATURE_STATUSES,
    RECONCILE_TASK,
    FeatureStatus,
    JobStatus,
)
from refract.jobs.dispatch import enqueue, record_enqueued
from tasks.services import get_services

log = structlog.get_logger(__name__)

# A job whose submit-time enqueue failed is picked up after this grace period.
UNSENT_GRACE = timedelta(seconds=10)
MAX_BACKOFF_FACTOR = 16


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def pending_features(job: Job, now: datetime, stale_after: timedelta) -> list[str]:
    """The features of ``job`` that should be (re)sent: queued, ready to run, or stale."""
    runs = {run.feature: run for run in job.features}
    pending = []
    for name, run in runs.items():
        if run.status == FeatureStatus.QUEUED.value:
            pending.append(name)
        elif run.status == FeatureStatus.WAITING.value:
            inputs = [runs[dep] for dep in FEATURES[name].needs if dep in runs]
            if all(dep.status in FINAL_FEATURE_STATUSES for dep in inputs):
                pending.append(name)
            elif any(dep.status == FeatureStatus.QUEUED.value for dep in inputs):
                # Resending the inputs alone would lose the chord: send them together.
                pending.append(name)
        elif run.status == FeatureStatus.RUNNING.value:
            started = _utc(run.started_at)
            if started is not None and now - started > stale_after:
                pending.append(name)
    return pending


def is_due(job: Job, now: datetime, requeue_after: timedelta) -> bool:
    """Whether ``job`` has waited long enough since it was last sent (with backoff)."""
    sent = _utc(job.enqueued_at)
    if sent is None:
        return now - (_utc(job.created_at) or now) > UNSENT_GRACE
    factor = min(2 ** max(job.enqueue_count - 1, 0), MAX_BACKOFF_FACTOR)
    return now - sent > requeue_after * factor


def reconcile_once(
    app: Any, *, requeue_after: timedelta, stale_after: timedelta, limit: int = 200
) -> list[str]:
    """Re-enqueue what is overdue; returns the ids of the jobs it sent again."""
    now = utcnow()
    resent: list[str] = []
    with session_scope() as session:
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
            enqueue(app, job_id, pending)
        except Exception as exc:  # broker still down: try again next round
            log.warning("reconcile_enqueue_failed", job_id=str(job_id), error=str(exc))
            continue
        with session_scope() as session:
            record_enqueued(session, job_id)
        log.info("reconcile_requeued", job_id=str(job_id), features=pending)
        resent.append(str(job_id))
    return resent


@shared_task(name=RECONCILE_TASK, ignore_result=True)
def reconcile() -> dict[str, Any]:
    """Beat's periodic sweep for lost or never-sent work."""
    settings = get_services().settings
    resent = reconcile_once(
        current_app,
        requeue_after=timedelta(seconds=settings.requeue_after_s),
        stale_after=timedelta(seconds=settings.claim_stale_after_s),
    )
    return {"requeued": resent}
