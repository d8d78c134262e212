"""Creating, finding and listing jobs. Functions here never commit: callers own sessions.

Submitting a job (create, commit, then enqueue) is orchestrated by the API in
``api/submission.py``; the reconciler re-enqueues through :mod:`refract.jobs.dispatch`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from refract.core.errors import Conflict, NotFound, ValidationFailed
from refract.core.ids import parse_id
from refract.core.models import FeatureRun, Job, utcnow
from refract.jobs.catalog import FEATURES, FeatureStatus, JobKind
from refract.jobs.progress import Event
from refract.jobs.state import job_event


@dataclass(frozen=True)
class NewJob:
    """A job to create, already validated: its kind, features, language and input."""

    kind: JobKind
    features: list[str]
    language: str
    input: dict[str, Any]
    # A hash of the request that asked for it: a retried request (same Idempotency-Key,
    # same hash) gets the same job; another body with that key is a conflict.
    request_hash: str | None = None
    # The API key that asks for it (None with REFRACT_AUTH=off): the job's owner.
    owner_key_id: uuid.UUID | None = None


def scoped_idempotency_key(owner_key_id: uuid.UUID | None, key: str) -> str:
    """How ``key`` is stored: per owner, so two clients' keys never meet."""
    return f"{owner_key_id or '-'}:{key}"


def request_fingerprint(payload: Any) -> str:
    """A stable hash of a request body, to tell a retried request from a different one."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def find_by_idempotency_key(
    session: Session, owner_key_id: uuid.UUID | None, key: str, request_hash: str | None
) -> Job | None:
    """The job ``owner_key_id`` created earlier with ``key``; ``Conflict`` if it was for
    another body."""
    scoped = scoped_idempotency_key(owner_key_id, key)
    job = session.scalars(select(Job).where(Job.idempotency_key == scoped)).one_or_none()
    if job is not None and request_hash is not None and job.request_hash != request_hash:
        raise Conflict("Idempotency-Key was already used with a different request body")
    return job


def add_job(
    session: Session,
    new: NewJob,
    *,
    idempotency_key: str | None = None,
    enqueued: bool = False,
    job_id: uuid.UUID | None = None,
) -> Job:
    """Add a job and one feature row per feature to ``session`` (flushed, not committed).

    ``job_id``: the id to give it, for a caller that must know it before (a new one
    otherwise).

    ``enqueued``: the caller sends the job's features right after committing, so the
    row says so from the start (``enqueued_at`` now, ``enqueue_count`` 1): the creation
    is one transaction, not a second one after the send (:mod:`api.submission`).
    """
    now = utcnow()
    job = Job(
        id=job_id or uuid.uuid4(),
        kind=new.kind.value,
        status="queued",
        progress=0.0,
        language=new.language,
        input=new.input,
        owner_key_id=new.owner_key_id,
        idempotency_key=(
            scoped_idempotency_key(new.owner_key_id, idempotency_key)
            if idempotency_key is not None
            else None
        ),
        request_hash=new.request_hash,
        enqueued_at=now if enqueued else None,
        enqueue_count=1 if enqueued else 0,
        version=1,
        created_at=now,
        updated_at=now,
    )
    for position, name in enumerate(new.features):
        status = FeatureStatus.WAITING if FEATURES[name].needs else FeatureStatus.QUEUED
        job.features.append(
            FeatureRun(
                feature=name,
                position=position,
                status=status.value,
                progress=0.0,
                attempts=0,
                queued_at=now,
            )
        )
    session.add(job)
    session.flush()
    return job


def creation_events(job: Job) -> list[Event]:
    """The events that open a job's stream: its state when it was created."""
    return [job_event(job)]


def get_job(session: Session, job_id: str) -> Job:
    """The job with id ``job_id``; ``NotFound`` for unknown or malformed ids."""
    job = session.get(Job, parse_id(job_id, "job"))
    if job is None:
        raise NotFound(f"job {job_id} does not exist")
    return job


def encode_cursor(job: Job) -> str:
    """An opaque cursor pointing just after ``job`` in newest-first order."""
    created = job.created_at.isoformat()
    raw = json.dumps([created, str(job.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (created_at, id) a cursor points after; 422 on a malformed cursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, job_id = json.loads(raw)
        when = datetime.fromisoformat(created)
        if when.tzinfo is None:
            raise ValueError("the cursor's time has no zone")
        return when, uuid.UUID(job_id)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ValidationFailed("cursor is malformed") from exc


def list_jobs(
    session: Session,
    *,
    limit: int,
    status: str | None = None,
    kind: str | None = None,
    cursor: str | None = None,
    owner: uuid.UUID | Literal["any"] | None = "any",
) -> tuple[list[Job], str | None]:
    """Jobs newest first (keyset pagination on created_at, id) and the next cursor;
    ``owner`` limits them to one key's jobs (``None``: the jobs made with auth off)."""
    query = select(Job).order_by(Job.created_at.desc(), Job.id.desc())
    if owner != "any":
        query = query.where(
            Job.owner_key_id.is_(None) if owner is None else Job.owner_key_id == owner
        )
    if status:
        query = query.where(Job.status == status)
    if kind:
        query = query.where(Job.kind == kind)
    if cursor:
        created, job_id = decode_cursor(cursor)
        query = query.where(
            or_(Job.created_at < created, and_(Job.created_at == created, Job.id < job_id))
        )
    jobs = list(session.scalars(query.limit(limit + 1)))
    next_cursor = encode_cursor(jobs[limit - 1]) if len(jobs) > limit else None
    return jobs[:limit], next_cursor
