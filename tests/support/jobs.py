"""What the API stored, read straight from the database and the media directory, and jobs
changed the way a worker changes them (for API tests that run no worker)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from refract.core.db import session_scope
from refract.core.models import Artifact, FeatureRun, Job, utcnow
from refract.jobs.catalog import FeatureStatus
from refract.jobs.progress import Event, ProgressBus
from refract.jobs.state import change_job, feature_event


def table_counts() -> dict[str, int]:
    """Rows in each of the API's tables."""
    with session_scope() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Job, FeatureRun, Artifact)
        }


def media_files(root: Path) -> list[Path]:
    """Every file under the media directory (temporary files included)."""
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def load_job(job_id: str, sessions: sessionmaker[Session] | None = None) -> Job:
    """The job row, with its features loaded (from ``sessions``, else the process's)."""
    with session_scope(sessions) as session:
        job = session.get(Job, uuid.UUID(job_id))
        assert job is not None
        _ = list(job.features)
        session.expunge_all()
        return job


def advance(bus: ProgressBus, job_id: str, mutate: Callable[[dict[str, FeatureRun]], None]) -> Job:
    """Change a job the way a worker does (lock, mutate, publish, commit)."""

    def apply(_job: Job, runs: dict[str, FeatureRun]) -> list[Event]:
        before = {name: run.status for name, run in runs.items()}
        mutate(runs)
        return [
            feature_event(job_id, run) for name, run in runs.items() if run.status != before[name]
        ]

    with session_scope() as session:
        job = change_job(session, bus, uuid.UUID(job_id), apply)
        _ = list(job.features)
        session.flush()
        session.expunge_all()
        return job


def start(*names: str) -> Callable[[dict[str, FeatureRun]], None]:
    """A mutation: the named features start running."""

    def mutate(runs: dict[str, FeatureRun]) -> None:
        for name in names:
            runs[name].status = FeatureStatus.RUNNING.value
            runs[name].attempts += 1
            runs[name].progress = 0.1

    return mutate


def finish(
    *names: str, status: FeatureStatus = FeatureStatus.SUCCEEDED
) -> Callable[[dict[str, FeatureRun]], None]:
    """A mutation: the named features end with ``status``."""

    def mutate(runs: dict[str, FeatureRun]) -> None:
        for name in names:
            run = runs[name]
            run.status, run.progress, run.finished_at = status.value, 1.0, utcnow()
            if status == FeatureStatus.SUCCEEDED:
                run.result = {"tldr": f"{name} done"}
            else:
                run.error_code, run.error_message = "model_timeout", "too slow"

    return mutate
