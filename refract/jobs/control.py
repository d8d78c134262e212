"""Acting on a job after it was submitted: cancel it, retry one of its features, retry
every failure of a kind. The API and the admin dashboard both call these.

Every change goes through :func:`refract.jobs.state.change_job` (the job's row lock,
re-aggregation, events published once committed); functions here never commit, except
:func:`enqueue_retries`, which runs after the caller's commit as submission does.

- **Cancel**: features not final yet (``waiting``, ``queued``, ``running``) become
  ``canceled`` at once, so the job is final at once (``canceled``, or ``partial`` when some
  had already succeeded). A run still working on a canceled feature stops at its next step
  and its outcome is refused, as a final feature's always is (``tasks/outcomes.py``);
  its message, a chord callback and the reconciler all leave a final feature alone.
  Canceling a job that is already final changes nothing (not even its version).
- **Retry**: a final feature goes back to ``queued`` (``waiting`` if an input is not
  final), as if new: attempts, result, error, usage and timings cleared; the features that
  need it go back to ``waiting``, cleared too, and the job runs again. The retried feature
  is sent alone: a run that is not a chord member sends its ready dependents itself.
  Images of the cleared results stay with the job's other images, erased with the job
  (``DELETE``) or by retention; the job resource no longer points at them.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime

import structlog
from celery import Celery
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from refract.core.errors import BrokerUnavailable, Conflict, Forbidden, NotFound
from refract.core.models import FeatureRun, Job, utcnow
from refract.jobs.catalog import (
    FEATURES,
    FINAL_FEATURE_STATUSES,
    FINAL_JOB_STATUSES,
    FeatureStatus,
)
from refract.jobs.dispatch import enqueue, record_enqueued
from refract.jobs.progress import Event, ProgressBus
from refract.jobs.readiness import inputs_final
from refract.jobs.state import change_job, feature_event

log = structlog.get_logger(__name__)

CANCELED_CODE = "canceled"
FEATURE_NOT_FINAL = "feature_not_final"
RETRY_NOT_ALLOWED = "retry_not_allowed"
JOB_PURGED = "job_purged"


def cancel_job(session: Session, bus: ProgressBus | None, job_id: uuid.UUID) -> Job:
    """Cancel every feature of the job that is not final; the caller commits.

    Returns the job as changed, or as it was when it was already final (repeating a
    cancel is harmless). ``NotFound`` if there is no such job.
    """
    found = session.get(Job, job_id)
    if found is None:
        raise NotFound(f"job {job_id} does not exist")
    if found.status in FINAL_JOB_STATUSES:
        # Nothing to stop: no new version, no event, the same resource as before.
        return found

    def mutate(job: Job, runs: dict[str, FeatureRun]) -> list[Event]:
        now = utcnow()
        events = []
        for run in runs.values():
            if run.status in FINAL_FEATURE_STATUSES:
                continue
            run.status = FeatureStatus.CANCELED.value
            run.progress = 1.0
            run.finished_at = now
            # task_id stays: the run that held it reads ``canceled`` and stops.
            run.error_code = CANCELED_CODE
            run.error_message = "the job was canceled before this feature finished"
            run.error_ref = None
            events.append(feature_event(str(job.id), run, step="canceled"))
        return events

    job = change_job(session, bus, job_id, mutate)
    log.info("job_canceled", job_id=str(job_id), status=job.status)
    return job


def retry_feature(
    session: Session, bus: ProgressBus | None, job_id: uuid.UUID, feature: str, *, admin: bool
) -> list[str]:
    """Queue ``feature`` of the job again, and put what needs it back to ``waiting``.

    An admin may retry any final feature (a succeeded one is run again); the job's owner
    only a ``failed`` one. Returns the features to send after the caller's commit
    (:func:`enqueue_retries`). Raises ``NotFound`` (no such job, or the job has no such
    feature), ``Conflict`` (``feature_not_final``; ``job_purged``: retention erased its
    inputs) or ``Forbidden`` (``retry_not_allowed``); the caller then rolls back.
    """
    found = session.get(Job, job_id)
    if found is None:
        raise NotFound(f"job {job_id} does not exist")
    # Checked before taking the lock (a refusal then changes nothing at all), and again
    # under it, where the decision holds.
    _check_retry(found, {run.feature: run for run in found.features}, feature, admin)
    send: list[str] = []

    def mutate(job: Job, runs: dict[str, FeatureRun]) -> list[Event]:
        _check_retry(job, runs, feature, admin)
        events, ready = _reset(job, runs, [feature])
        send.extend(ready)
        return events

    change_job(session, bus, job_id, mutate)
    log.info("feature_retried", job_id=str(job_id), feature=feature, admin=admin, send=send)
    return send


def retry_failed(
    session: Session, bus: ProgressBus | None, *, error_code: str, since: datetime, until: datetime
) -> dict[uuid.UUID, list[str]]:
    """Retry every ``failed`` feature with ``error_code`` that finished in [since, until]
    (an admin's bulk action; jobs whose inputs retention erased are left out).

    Returns, per job changed, the features to send after the caller's commit.
    """
    rows = session.execute(
        select(FeatureRun.job_id, FeatureRun.feature)
        .join(Job, Job.id == FeatureRun.job_id)
        .where(
            FeatureRun.status == FeatureStatus.FAILED.value,
            FeatureRun.error_code == error_code,
            FeatureRun.finished_at >= since,
            FeatureRun.finished_at <= until,
            Job.purged_at.is_(None),
        )
        .order_by(FeatureRun.job_id, FeatureRun.position)
    ).all()
    chosen: dict[uuid.UUID, list[str]] = defaultdict(list)
    for job_id, feature in rows:
        chosen[job_id].append(feature)
    plan: dict[uuid.UUID, list[str]] = {}
    for job_id, features in chosen.items():
        sent = _retry_still_failed(session, bus, job_id, features, error_code)
        if sent is not None:
            plan[job_id] = sent
    log.info("failures_retried", error_code=error_code, jobs=len(plan))
    return plan


def enqueue_retries(celery: Celery, session: Session, plan: dict[uuid.UUID, list[str]]) -> None:
    """Send each job's retried features and note when (after the retry's commit).

    A broker that cannot be reached raises ``BrokerUnavailable`` (503): the retries are
    committed all the same, and the reconciler sends what was not sent once it is back.
    """
    for job_id, features in plan.items():
        if not features:
            continue  # waiting on an input that is being retried: its run sends them
        try:
            enqueue(celery, job_id, features)
        except Exception as exc:
            # Kombu and redis raise many types for a broker that is down.
            log.warning(
                "retry_enqueue_failed", job_id=str(job_id), error=f"{type(exc).__name__}: {exc}"
            )
            raise BrokerUnavailable(
                "the retry is recorded, but the job queue is unavailable right now; the "
                "feature is sent as soon as it is back"
            ) from exc
        try:
            record_enqueued(session, job_id)
            session.commit()
        except SQLAlchemyError as exc:
            session.rollback()
            # The message is out; the reconciler may send another copy, which is harmless.
            log.warning("record_enqueued_failed", job_id=str(job_id), error=str(exc))


def _retry_still_failed(
    session: Session,
    bus: ProgressBus | None,
    job_id: uuid.UUID,
    features: list[str],
    error_code: str,
) -> list[str] | None:
    """Retry those of ``features`` still failed with ``error_code`` under the lock; the
    features to send, or ``None`` if none was (another action came first)."""
    send: list[str] | None = None

    def mutate(job: Job, runs: dict[str, FeatureRun]) -> list[Event]:
        nonlocal send
        still = [
            name
            for name in features
            if runs[name].status == FeatureStatus.FAILED.value
            and runs[name].error_code == error_code
        ]
        if not still:
            return []
        events, send = _reset(job, runs, still)
        return events

    change_job(session, bus, job_id, mutate)
    return send


def _check_retry(job: Job, runs: dict[str, FeatureRun], feature: str, admin: bool) -> None:
    """Raise the problem that refuses this retry, if one does."""
    run = runs.get(feature)
    if run is None:
        raise NotFound(f"job {job.id} has no feature {feature!r}")
    if run.status not in FINAL_FEATURE_STATUSES:
        raise Conflict(
            f"feature {feature!r} is {run.status}: only a finished feature can be retried",
            code=FEATURE_NOT_FINAL,
        )
    if not admin and run.status != FeatureStatus.FAILED.value:
        raise Forbidden(
            f"feature {feature!r} is {run.status}: its owner may retry only a failed "
            "feature (an admin may retry any finished one)",
            code=RETRY_NOT_ALLOWED,
        )
    if job.purged_at is not None:
        raise Conflict(
            "retention erased this job's inputs: its features cannot run again",
            code=JOB_PURGED,
        )


def _reset(
    job: Job, runs: dict[str, FeatureRun], retried: list[str]
) -> tuple[list[Event], list[str]]:
    """Put ``retried`` back to ``queued`` (``waiting`` while an input is not final) and
    what needs them to ``waiting``, all cleared; the events and the features to send."""
    now = utcnow()
    dependents = _dependents(retried, runs)
    for name in [*retried, *dependents]:
        _clear(runs[name], now)
    # Inputs are judged after every reset: a retried input makes its dependent wait.
    for name in retried:
        if inputs_final(name, runs):
            runs[name].status = FeatureStatus.QUEUED.value
    # Sent afresh: the reconciler's backoff starts over (it resends a lost message after
    # ``requeue_after_s``), and it does not take the job for never sent meanwhile.
    job.enqueued_at = now
    job.enqueue_count = 0
    events = [
        feature_event(str(job.id), runs[name], step="retry")
        for name in runs
        if name in retried or name in dependents
    ]
    send = [name for name in retried if runs[name].status == FeatureStatus.QUEUED.value]
    return events, send


def _dependents(features: list[str], runs: dict[str, FeatureRun]) -> list[str]:
    """The job's features that need any of ``features``, directly or not (not those)."""
    found: list[str] = []
    frontier = set(features)
    while frontier:
        frontier = {
            name
            for name, spec in FEATURES.items()
            if name in runs
            and name not in features
            and name not in found
            and frontier.intersection(spec.needs)
        }
        found.extend(sorted(frontier, key=lambda name: runs[name].position))
    return found


def _clear(run: FeatureRun, now: datetime) -> None:
    """The run as a new one: ``waiting``, no attempts, result, error, usage or timings."""
    run.status = FeatureStatus.WAITING.value
    run.progress = 0.0
    run.attempts = 0
    run.task_id = None
    run.result = None
    run.error_code = run.error_message = run.error_ref = None
    run.backend = run.model = run.prompt_version = None
    run.input_tokens = run.output_tokens = None
    run.queued_at = now
    run.started_at = run.heartbeat_at = run.finished_at = None
