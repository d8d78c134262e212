"""Reloading a job's committed state, for the progress bus to republish it.

When a publish to Redis fails, the snapshot there stays behind the database until
something republishes it (:class:`refract.jobs.progress.ProgressBus` does, from a thread
of its own, with the function :func:`committed_state` builds). The snapshot republished
is built from the database row, the record of truth, with a ``job`` event that tells a
client following the stream where the job stands now.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from refract.core.db import session_scope
from refract.core.models import Job
from refract.jobs.progress import Event, Reload
from refract.jobs.resource import job_resource
from refract.jobs.state import job_event


def committed_state(sessions: sessionmaker[Session]) -> Reload:
    """A :data:`~refract.jobs.progress.Reload` reading jobs through ``sessions``."""

    def reload(job_id: str) -> tuple[int, dict[str, Any], list[Event]] | None:
        with session_scope(sessions) as session:
            job = session.get(Job, uuid.UUID(job_id))
            if job is None:
                return None
            return job.version, job_resource(job), [job_event(job)]

    return reload
