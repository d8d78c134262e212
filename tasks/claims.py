"""Claiming a feature for a run, under the job's row lock.

A claim succeeds only for a feature that is not final, whose inputs are final, and that
no live run holds: a ``running`` feature whose heartbeat is alive is left alone, even by
a redelivery of its own message (a copy of the task would bill the model twice). A
feature claimed ``max_attempts`` times without an outcome (each time its worker was
lost) is not claimed again: it fails with ``attempts_exhausted`` and the job moves on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from refract.core.models import FeatureRun, Job, utcnow
from refract.jobs.catalog import FINAL_FEATURE_STATUSES, FeatureStatus
from refract.jobs.progress import Event
from refract.jobs.readiness import heartbeat_stopped, inputs_final
from refract.jobs.state import change_job, feature_event
from tasks.services import WorkerServices

ATTEMPTS_EXHAUSTED = "attempts_exhausted"


class Skip(Exception):
    """The run has nothing to do (or no longer owns the feature); its change rolls back."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Claim:
    """The job as claimed, and whether the claim found the attempts used up instead."""

    job: Job
    exhausted: bool = False


def claim(
    session: Session, services: WorkerServices, job_id: uuid.UUID, feature: str, task_id: str
) -> Claim:
    """Claim ``feature`` of ``job_id`` for run ``task_id``; ``Skip`` if it is not ours."""
    settings = services.settings
    timeout = timedelta(seconds=settings.heartbeat_timeout_s)
    exhausted = False

    def mutate(job: Job, runs: dict[str, FeatureRun]) -> list[Event]:
        nonlocal exhausted
        run = runs.get(feature)
        if run is None:
            raise Skip("feature not part of this job")
        if run.status in FINAL_FEATURE_STATUSES:
            raise Skip(f"already {run.status}")
        if not inputs_final(feature, runs):
            raise Skip("inputs not final yet")
        now = utcnow()
        if run.status == FeatureStatus.RUNNING.value and not heartbeat_stopped(run, now, timeout):
            raise Skip("running in another task")
        if run.attempts >= settings.max_attempts:
            exhausted = True
            run.status = FeatureStatus.FAILED.value
            run.progress = 1.0
            run.finished_at = now
            run.error_code = ATTEMPTS_EXHAUSTED
            run.error_message = (
                f"the feature was started {run.attempts} times and its worker was lost "
                "each time; it is not tried again"
            )
            return [feature_event(str(job.id), run, step="finished")]
        run.status = FeatureStatus.RUNNING.value
        run.attempts += 1
        run.task_id = task_id
        run.started_at = run.heartbeat_at = now
        run.finished_at = None
        run.progress = 0.05
        run.error_code = run.error_message = run.error_ref = None
        return [feature_event(str(job.id), run, step="started")]

    job = change_job(session, services.bus, job_id, mutate)
    return Claim(job, exhausted)
