"""Changing a job's state: one place that locks, mutates, aggregates and publishes.

Every change goes through :func:`change_job`: it bumps the job's ``version`` first (which
takes the row lock on Postgres and the write lock on SQLite), lets the caller change
feature rows, recomputes the job's status and progress, and publishes the new snapshot
and its events to Redis once the transaction has committed, never before: a change that
rolls back is never seen by a client.

The snapshot carries the committed version, and Redis keeps a snapshot only over an older
one, so a late publish cannot overwrite a newer state. Two writers serialised by the row
lock may still publish in the opposite order for an instant; their events then reach the
stream in that order (the final ``job`` event carries every feature's state, so a client
that stops there has missed nothing).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from refract.core.db import on_commit
from refract.core.errors import NotFound
from refract.core.models import FeatureRun, Job, utcnow
from refract.jobs.catalog import (
    FINAL_FEATURE_STATUSES,
    FINAL_JOB_STATUSES,
    FeatureStatus,
    JobStatus,
)
from refract.jobs.progress import Event, ProgressBus
from refract.jobs.resource import job_resource


def aggregate(runs: Sequence[FeatureRun]) -> tuple[JobStatus, float]:
    """A job's status and progress from its features' (see API.md for the rules)."""
    statuses = [FeatureStatus(run.status) for run in runs]
    progress = (
        sum(
            1.0 if s in FINAL_FEATURE_STATUSES else run.progress
            for s, run in zip(statuses, runs, strict=True)
        )
        / len(runs)
        if runs
        else 1.0
    )
    if all(s in FINAL_FEATURE_STATUSES for s in statuses):
        if statuses and all(s == FeatureStatus.CANCELED for s in statuses):
            return JobStatus.CANCELED, 1.0
        succeeded = sum(s == FeatureStatus.SUCCEEDED for s in statuses)
        if succeeded == len(statuses):
            return JobStatus.SUCCEEDED, 1.0
        return (JobStatus.PARTIAL if succeeded else JobStatus.FAILED), 1.0
    if all(s in (FeatureStatus.QUEUED, FeatureStatus.WAITING) for s in statuses):
        return JobStatus.QUEUED, progress
    return JobStatus.RUNNING, progress


def feature_event(job_id: str, run: FeatureRun, **extra: Any) -> Event:
    """The ``feature`` event describing ``run``'s current state."""
    data: dict[str, Any] = {
        "job_id": job_id,
        "feature": run.feature,
        "status": run.status,
        "progress": round(run.progress, 3),
        "attempts": run.attempts,
    }
    if run.error_code:
        data["error"] = {"code": run.error_code, "message": run.error_message or ""}
        if run.error_ref:
            data["error"]["reference"] = run.error_ref
    data.update(extra)
    return Event("feature", data)


def job_event(job: Job) -> Event:
    """The ``job`` event: the job's status plus every feature's, so none is missed."""
    return Event(
        "job",
        {
            "job_id": str(job.id),
            "status": job.status,
            "progress": round(job.progress, 3),
            "final": job.status in FINAL_JOB_STATUSES,
            "features": {
                run.feature: {"status": run.status, "progress": round(run.progress, 3)}
                for run in job.features
            },
        },
    )


Mutation = Callable[[Job, dict[str, FeatureRun]], list[Event]]

# Built once: every claim, progress write and outcome runs these two, and building a
# statement (and its cache key) anew each time is CPU that every worker thread waits on.
_BUMP_VERSION = (
    update(Job)
    .where(Job.id == bindparam("job_id"))
    .values(version=Job.version + 1)
    .returning(Job.version)
)
_LOAD_JOB = (
    select(Job).where(Job.id == bindparam("job_id")).execution_options(populate_existing=True)
)


def change_job(
    session: Session, bus: ProgressBus | None, job_id: uuid.UUID, mutate: Mutation
) -> Job:
    """Apply ``mutate`` to a job under its lock and re-aggregate; the caller commits, and
    the new state is published once it has.

    ``mutate`` gets the job and its feature runs by name, changes them, and returns the
    events to publish. A ``job`` event is added whenever the job's status changes.
    """
    version = session.execute(_BUMP_VERSION, {"job_id": job_id}).scalar_one_or_none()
    if version is None:
        raise NotFound(f"job {job_id} does not exist")
    job = session.scalars(_LOAD_JOB, {"job_id": job_id}).one()
    runs = {run.feature: run for run in job.features}
    events = mutate(job, runs)
    session.flush()
    status, progress = aggregate(list(runs.values()))
    previous = job.status
    job.status = status.value
    job.progress = progress
    now = utcnow()
    job.updated_at = now
    if status in FINAL_JOB_STATUSES and job.finished_at is None:
        job.finished_at = now
    elif previous in FINAL_JOB_STATUSES and status not in FINAL_JOB_STATUSES:
        # A retried feature makes a finished job run again: it is not finished any more.
        job.finished_at = None
    session.flush()
    if status.value != previous or status in FINAL_JOB_STATUSES:
        events.append(job_event(job))
    if bus is not None:
        snapshot = job_resource(job)
        on_commit(session, lambda: bus.publish(str(job_id), version, snapshot, events))
    return job
