"""Retention (run by beat): erase visitors' images and inline inputs once they are old.

Every ``retention_interval_s``, jobs finished and created more than ``retention_s`` ago
lose their photos, portraits, cards, thumbnails and inline inputs
(:func:`refract.jobs.erasure.purge_job`); statuses, timings, usage and text results stay
for the operators. A round handles a bounded batch, oldest first, each job in its own
transaction, so a backlog is worked off over a few rounds without a long lock.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog
from celery import shared_task

from refract.core.models import utcnow
from refract.jobs.catalog import PURGE_TASK
from refract.jobs.erasure import expired_jobs, purge_job
from tasks.services import WorkerServices, get_services

log = structlog.get_logger(__name__)

BATCH = 200


def purge_once(services: WorkerServices, *, limit: int = BATCH) -> list[str]:
    """Purge up to ``limit`` expired jobs; the ids of those purged."""
    cutoff = utcnow() - timedelta(seconds=services.settings.retention_s)
    with services.session() as session:
        due = expired_jobs(session, cutoff, limit)
    purged: list[str] = []
    for job_id in due:
        try:
            with services.session() as session:
                remove_files = purge_job(session, services.store.delete, services.bus, job_id)
        except Exception as exc:  # erased meanwhile, or the database is away: next round
            log.warning("retention_purge_failed", job_id=str(job_id), error=type(exc).__name__)
            continue
        remove_files()  # only once the purge has committed
        purged.append(str(job_id))
    if purged:
        log.info("retention_purged", jobs=len(purged))
    return purged


@shared_task(name=PURGE_TASK, ignore_result=True)
def purge_expired() -> dict[str, Any]:
    """Beat's periodic retention sweep."""
    return {"purged": purge_once(get_services())}
