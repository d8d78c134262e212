"""Submitting a checked job: create, commit, publish, then enqueue.

The order is the design's: the job, its feature rows and its images are committed in
one transaction; only then is the creation snapshot published (one Redis round trip)
and the Celery canvas sent. That transaction is the request's only one: the row is
stored already marked as sent (``enqueued_at``), since the send follows at once. A
broker failure after the commit is logged and the mark taken back, so the job stays
``queued`` with no ``enqueued_at`` for the reconciler to send at its next pass: the
client still gets its 202. (A process that dies between the commit and the send leaves
the mark: the reconciler then resends once ``requeue_after_s`` has passed.)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from api.intake import Submission
from api.services import Services
from refract.core.errors import Conflict
from refract.core.models import Job
from refract.imaging.storage import MediaStore, store_image
from refract.jobs.catalog import JobKind
from refract.jobs.dispatch import enqueue, record_not_enqueued
from refract.jobs.resource import job_resource
from refract.jobs.store import add_job, creation_events, find_by_idempotency_key
from refract.observability import metrics

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Outcome:
    """The submitted job, and whether this request created it (or replayed a key)."""

    job: Job
    created: bool
    # The job resource as published at creation (built once, for the answer too);
    # None for a replay, whose job may have moved on since.
    resource: dict[str, Any] | None = None


def submit(
    session: Session,
    services: Services,
    submission: Submission,
    key: str | None,
    admit: Callable[[], None] = lambda: None,
) -> Outcome:
    """Create the job of ``submission`` (or return the one ``key`` already created).

    ``admit`` runs just before a job is created (never for a replay of ``key``) and
    raises to refuse it: intake closed, the key over its daily cap.
    """
    owner = submission.job.owner_key_id
    if key is not None:
        existing = find_by_idempotency_key(session, owner, key, submission.job.request_hash)
        if existing is not None:
            return Outcome(existing, created=False)
    admit()
    try:
        job = _create(session, services.store, submission, key)
    except IntegrityError:
        # Another request with the same Idempotency-Key committed first.
        if key is None:
            raise
        existing = find_by_idempotency_key(session, owner, key, submission.job.request_hash)
        if existing is None:
            raise Conflict("a request with this Idempotency-Key is in progress") from None
        return Outcome(existing, created=False)
    bound = log.bind(job_id=str(job.id), kind=job.kind)
    bound.info("job_created", features=submission.job.features)
    metrics.job_submitted(job.kind)
    resource = job_resource(job)
    services.bus.publish(str(job.id), job.version, resource, creation_events(job))
    _enqueue(session, services, job, submission.job.features, bound)
    return Outcome(job, created=True, resource=resource)


def _create(session: Session, store: MediaStore, submission: Submission, key: str | None) -> Job:
    """Add and commit the job and its images; on any failure nothing is left behind.

    The ids are chosen first, so the job is inserted with its input already pointing at
    its images: one insert of the (large) input, not an insert and then an update.
    """
    written: list[str] = []
    job_id = uuid.uuid4()
    artifact_ids = {role: uuid.uuid4() for role in submission.images}
    new = replace(submission.job, input=_complete_input(submission, artifact_ids))
    try:
        job = add_job(session, new, idempotency_key=key, enqueued=bool(new.features), job_id=job_id)
        for role, image in submission.images.items():
            artifact = store_image(
                session,
                store,
                job_id=job.id,
                role=role,
                data=image.data,
                content_type=image.mime_type,
                width=image.width,
                height=image.height,
                artifact_id=artifact_ids[role],
            )
            written.append(artifact.storage_key)
        session.commit()
    except BaseException:
        session.rollback()
        for storage_key in written:
            store.delete(storage_key)
        raise
    return job


def _complete_input(submission: Submission, artifact_ids: dict[str, uuid.UUID]) -> dict[str, Any]:
    """The job's input, pointing at its images by artifact id."""
    data = dict(submission.job.input)
    if submission.job.kind == JobKind.PHOTOCARD:
        data["photo_artifact_id"] = str(artifact_ids["photo"])
    elif "thumbnail" in artifact_ids:
        data["source"] = {**data["source"], "thumbnail_artifact_id": str(artifact_ids["thumbnail"])}
    return data


def _enqueue(
    session: Session,
    services: Services,
    job: Job,
    features: list[str],
    bound: Any,
) -> None:
    """Send the job's canvas; a failure leaves it to the reconciler."""
    job_id: uuid.UUID = job.id
    try:
        enqueue(services.celery, job_id, features)
    except Exception as exc:
        # Kombu and redis raise many types for a broker that is down; whatever it was,
        # the job is committed and the reconciler will send it.
        bound.warning("enqueue_failed", error=f"{type(exc).__name__}: {exc}")
        _unmark_enqueued(session, job_id, bound)
        return
    bound.info("job_enqueued")


def _unmark_enqueued(session: Session, job_id: uuid.UUID, bound: Any) -> None:
    """Take back the row's ``enqueued_at``: the send failed, the reconciler sends it."""
    try:
        record_not_enqueued(session, job_id)
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        # The mark stays: the reconciler sends the job once requeue_after_s has passed.
        bound.warning("record_not_enqueued_failed", error=str(exc))
