"""Erasing visitors' data: a whole job on request, or its images once they are old.

``DELETE /api/v1/jobs/<id>`` erases everything of a job (:func:`erase_job`): its rows,
every file it stored, and its Redis snapshot and events. Retention (:func:`purge_job`,
run by beat) erases what identifies a visitor once ``retention_s`` has passed — photos,
portraits, cards, thumbnails and the inline inputs (a video's material, the visitor's
prompt) — and keeps what operators count: statuses, timings, usage and text results.
Its artifacts then answer 410 Gone.

Both lock the job's row first, as every writer does: a worker storing a result at the
same moment either commits before (and its image is erased too) or finds the job gone.
Files are removed only after the commit (callers run the returned cleanup), so a failed
transaction never leaves rows pointing at missing files. Functions here never commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from refract.core.errors import NotFound
from refract.core.models import Artifact, FeatureRun, Job, utcnow
from refract.jobs.progress import Event, ProgressBus
from refract.jobs.state import change_job

# Inputs erased by retention: what the visitor brought (the photo is an artifact).
INLINE_INPUTS = ("source", "prompt")

Cleanup = Callable[[], None]
# Removes a stored file by its storage key (``MediaStore.delete``).
DeleteFile = Callable[[str], None]


def _lock(session: Session, job_id: uuid.UUID) -> Job:
    job = session.scalars(select(Job).where(Job.id == job_id).with_for_update()).one_or_none()
    if job is None:
        raise NotFound(f"job {job_id} does not exist")
    return job


def erase_job(session: Session, delete_file: DeleteFile, job_id: uuid.UUID) -> Cleanup:
    """Delete the job, its features and artifacts; the returned cleanup (run it after the
    commit) removes their files. ``NotFound`` if there is no such job."""
    _lock(session, job_id)
    keys = list(session.scalars(select(Artifact.storage_key).where(Artifact.job_id == job_id)))
    session.execute(delete(Artifact).where(Artifact.job_id == job_id))
    session.execute(delete(FeatureRun).where(FeatureRun.job_id == job_id))
    session.execute(delete(Job).where(Job.id == job_id))
    session.expire_all()
    return lambda: _remove(delete_file, keys)


def purge_job(
    session: Session, delete_file: DeleteFile, bus: ProgressBus | None, job_id: uuid.UUID
) -> Cleanup:
    """Erase the job's images and inline inputs, keep the rest, and republish its state
    (the snapshot held the inputs too); the cleanup removes the files after the commit."""
    keys: list[str] = []

    def mutate(job: Job, _runs: dict[str, FeatureRun]) -> list[Event]:
        now = utcnow()
        keys.extend(
            session.scalars(
                select(Artifact.storage_key).where(
                    Artifact.job_id == job_id, Artifact.purged_at.is_(None)
                )
            )
        )
        session.execute(
            update(Artifact)
            .where(Artifact.job_id == job_id, Artifact.purged_at.is_(None))
            .values(purged_at=now)
        )
        # A new dict: the JSON column only notices reassignment.
        job.input = {k: v for k, v in (job.input or {}).items() if k not in INLINE_INPUTS}
        # A second pass (a late artifact, see expired_jobs) keeps the first purge's time.
        job.purged_at = job.purged_at or now
        return []

    change_job(session, bus, job_id, mutate)
    return lambda: _remove(delete_file, keys)


def expired_jobs(session: Session, older_than: datetime, limit: int) -> list[uuid.UUID]:
    """Up to ``limit`` jobs created before ``older_than`` with something left to erase,
    oldest first: not purged yet, or purged but holding an image stored after that (a
    lost run's late write). Only finished ones: a running job's inputs are still needed."""
    late_image = (
        select(Artifact.id).where(Artifact.job_id == Job.id, Artifact.purged_at.is_(None)).exists()
    )
    return list(
        session.scalars(
            select(Job.id)
            .where(
                Job.created_at < older_than,
                Job.finished_at.is_not(None),
                or_(Job.purged_at.is_(None), late_image),
            )
            .order_by(Job.created_at)
            .limit(limit)
        )
    )


def _remove(delete_file: DeleteFile, keys: list[str]) -> None:
    for key in keys:
        delete_file(key)
