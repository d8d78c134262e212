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

import functools
import uuid
from collections.abc import Callable, Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
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


class _Rows:
    """Core statements and row <-> object copying for :func:`change_job`, built once.

    A change is the hottest thing a worker does (a claim, the progress writes and the
    outcome of every feature), and the ORM's loading, identity map and unit of work were
    about half of a feature's CPU: the rows are read and written with Core instead, and
    the mutation gets plain (transient) ``Job`` and ``FeatureRun`` objects made from them.
    """

    def __init__(self) -> None:
        jobs, runs = cast(Table, Job.__table__), cast(Table, FeatureRun.__table__)
        self.job_class, self.run_class = (
            Job.__mapper__.class_manager,
            FeatureRun.__mapper__.class_manager,
        )
        # Attribute name -> column name, for every mapped column (they may differ).
        self.job_columns = {prop.key: prop.columns[0].name for prop in Job.__mapper__.column_attrs}
        self.run_columns = {
            prop.key: prop.columns[0].name for prop in FeatureRun.__mapper__.column_attrs
        }
        # The version bump takes the row lock (the write lock on SQLite) and returns the
        # locked row: one round trip for the lock and the job.
        self.bump = (
            update(jobs)
            .where(jobs.c.id == bindparam("locked_id"))
            .values(version=jobs.c.version + 1)
            .returning(*jobs.c)
        )
        self.load_runs = (
            select(runs).where(runs.c.job_id == bindparam("of_job")).order_by(runs.c.position)
        )
        # The SET clause comes from the parameters given (the changed columns), so the
        # statements are built once; Core compiles each set of columns once and caches it.
        self.update_run = update(runs).where(
            runs.c.job_id == bindparam("key_job"), runs.c.feature == bindparam("key_feature")
        )
        self.update_job = update(jobs).where(jobs.c.id == bindparam("key_id"))

    def job(self, row: Any) -> tuple[Job, dict[str, Any]]:
        """A transient job from its row, and the row's values by attribute."""
        values = {key: row._mapping[column] for key, column in self.job_columns.items()}
        return _transient(self.job_class, values), values

    def run(self, row: Any) -> tuple[FeatureRun, dict[str, Any]]:
        """A transient feature run from its row, and the row's values by attribute."""
        values = {key: row._mapping[column] for key, column in self.run_columns.items()}
        return _transient(self.run_class, values), values

    def write_run(self, session: Session, run: FeatureRun, before: dict[str, Any]) -> None:
        """Update the run's row, keyed by (job, feature), with the attributes the mutation
        changed, if any (the row exists from the job's creation: nothing to insert)."""
        changed = _changed(run, before, self.run_columns)
        if changed:
            keys = {"key_job": run.job_id, "key_feature": run.feature}
            session.execute(self.update_run, {**changed, **keys})

    def write_job(self, session: Session, job: Job, before: dict[str, Any]) -> None:
        """Update the job's row with the attributes that changed (status at least)."""
        changed = _changed(job, before, self.job_columns)
        if changed:
            session.execute(self.update_job, {**changed, "key_id": job.id})


def _transient(manager: Any, values: dict[str, Any]) -> Any:
    # As the ORM's own loader fills an instance: straight into its __dict__, without the
    # constructor's per-attribute events (a change made afterwards is seen as usual).
    obj = manager.new_instance()
    obj.__dict__.update(values)
    return obj


def _changed(obj: Any, before: dict[str, Any], columns: dict[str, str]) -> dict[str, Any]:
    # A JSON value replaced by an equal one is no change, as for the ORM.
    return {
        columns[key]: value
        for key, original in before.items()
        if (value := getattr(obj, key)) != original
    }


@functools.cache
def _statements() -> _Rows:
    # Built on first use, when the mappers are configured (not at import).
    return _Rows()


def change_job(
    session: Session, bus: ProgressBus | None, job_id: uuid.UUID, mutate: Mutation
) -> Job:
    """Apply ``mutate`` to a job under its lock and re-aggregate; the caller commits, and
    the new state is published once it has.

    ``mutate`` gets the job and its feature runs by name, changes them, and returns the
    events to publish; it may use ``session`` for other rows. The objects are not in the
    session (the rows are written with Core, see :class:`_Rows`): what ``mutate`` changes
    on them is written here, and the job returned is a plain object with its features.
    A ``job`` event is added whenever the job's status changes.
    """
    rows = _statements()
    locked = session.execute(rows.bump, {"locked_id": job_id}).one_or_none()
    if locked is None:
        raise NotFound(f"job {job_id} does not exist")
    job, job_before = rows.job(locked)
    loaded = [rows.run(row) for row in session.execute(rows.load_runs, {"of_job": job_id})]
    job.features = [run for run, _values in loaded]
    runs = {run.feature: run for run in job.features}
    events = mutate(job, runs)
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
    for run, before in loaded:
        rows.write_run(session, run, before)
    rows.write_job(session, job, job_before)
    if status.value != previous or status in FINAL_JOB_STATUSES:
        events.append(job_event(job))
    if bus is not None:
        snapshot = job_resource(job)
        version = job.version
        on_commit(session, lambda: bus.publish(str(job_id), version, snapshot, events))
    return job
