"""Enqueueing a job's features as Celery canvases, by task name.

Video features are independent: a ``group``. A photo card's ``card`` needs ``caption``
and ``stylize``: ``chord(group(caption, stylize), card)``. Signatures carry only the job
id and are immutable, so each task re-reads its inputs from the database. Callers enqueue
only after the job's rows are committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from celery import Celery, chord, group
from celery.canvas import Signature
from sqlalchemy import update
from sqlalchemy.orm import Session

from refract.core.models import Job, utcnow
from refract.jobs.catalog import FEATURES


def signature_for(app: Celery, job_id: uuid.UUID, feature: str) -> Signature:
    """The immutable signature that runs ``feature`` of ``job_id`` (routed by name)."""
    return app.signature(FEATURES[feature].task_name, args=(str(job_id),), immutable=True)


def build_canvas(app: Celery, job_id: uuid.UUID, features: Iterable[str]) -> Signature:
    """The canvas for ``features``: dependents become chord callbacks of their inputs."""
    chosen = list(features)
    dependents = [f for f in chosen if FEATURES[f].needs]
    independents = [f for f in chosen if not FEATURES[f].needs]
    if not dependents:
        return group(signature_for(app, job_id, f) for f in independents)
    if not independents:
        # Inputs are already final (a re-enqueue): the dependents can run straight away.
        return group(signature_for(app, job_id, f) for f in dependents)
    header = group(signature_for(app, job_id, f) for f in independents)
    body = [signature_for(app, job_id, f) for f in dependents]
    return chord(header, body[0] if len(body) == 1 else group(body))


def enqueue(app: Celery, job_id: uuid.UUID, features: Iterable[str]) -> None:
    """Send the canvas for ``features`` to the broker (raises if the broker is down)."""
    chosen = list(features)
    if chosen:
        build_canvas(app, job_id, chosen).apply_async()


def record_enqueued(session: Session, job_id: uuid.UUID) -> None:
    """Note that the job's pending features were sent now; the reconciler resends late ones.

    Only bookkeeping columns change (not part of the job resource), so no version bump.
    """
    session.execute(
        update(Job)
        .where(Job.id == job_id)
        # updated_at is part of the job resource; keep it (and so the ETag) unchanged.
        .values(
            enqueued_at=utcnow(),
            enqueue_count=Job.enqueue_count + 1,
            updated_at=Job.updated_at,
        )
    )


def record_not_enqueued(session: Session, job_id: uuid.UUID) -> None:
    """Undo an ``enqueued_at`` set before a send that then failed: the reconciler sends
    a job with none at its next pass (see :func:`refract.jobs.store.add_job`)."""
    session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(enqueued_at=None, enqueue_count=0, updated_at=Job.updated_at)
    )
